package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Attention structure of one batch of causal-LM rows. {@code mask[b][t]} is 0 for padding and otherwise a segment
 * id (1 everywhere for plain rows; 1, 2, 3, ... for documents packed into one row). A query attends to keys at or
 * before it in the same segment (and within {@code slidingWindow} positions when that is positive); a padding
 * query attends only to itself, so no row of scores is fully masked. Positions restart at 0 in every segment, so
 * left padding and packing give each document the positions it would have alone.
 *
 * @param bias      [B, T, T] 0 where attention is allowed, {@link #MASKED} elsewhere (added to the scores)
 * @param positions [B*T] position of each token within its segment
 * @param segments  [B*T] the mask, flattened
 */
public record CausalMask(int batch, int seq, INDArray bias, int[] positions, int[] segments) {
  /** Added to masked scores: exp underflows to exactly 0 once the row maximum is subtracted. */
  public static final double MASKED = -1e9;
  /** Hugging Face's label for positions without a target. */
  public static final int IGNORE = -100;

  public static CausalMask of(int[][] mask, int slidingWindow, DataType dtype) {
    int batch = mask.length, seq = mask[0].length;
    int[] segments = new int[batch * seq], positions = new int[batch * seq];
    double[] bias = new double[batch * seq * seq];
    for (int b = 0; b < batch; b++) {
      if (mask[b].length != seq)
        throw new IllegalArgumentException("ragged attention mask: row " + b + " has " + mask[b].length + " entries, expected " + seq);
      for (int t = 0; t < seq; t++) {
        int s = mask[b][t];
        if (s < 0) throw new IllegalArgumentException("attention mask row " + b + " position " + t + ": " + s + " is negative");
        segments[b * seq + t] = s;
        positions[b * seq + t] = s == 0 ? 0 : t > 0 && mask[b][t - 1] == s ? positions[b * seq + t - 1] + 1 : 0;
      }
      for (int i = 0; i < seq; i++) {
        int si = mask[b][i];
        int runStart = i - positions[b * seq + i];   // first token of i's contiguous segment
        int from = slidingWindow > 0 ? Math.max(runStart, i - slidingWindow + 1) : runStart;
        for (int j = 0; j < seq; j++) {
          boolean allowed = i == j || (si != 0 && j < i && j >= from);
          bias[(b * seq + i) * seq + j] = allowed ? 0 : MASKED;
        }
      }
    }
    return new CausalMask(batch, seq, Nd4j.createFromArray(bias).reshape(batch, seq, seq).castTo(dtype), positions, segments);
  }

  /**
   * Next-token targets [B*T] from labels aligned with the inputs (Hugging Face's convention: the model shifts):
   * position t predicts {@code labels[b][t+1]} when t+1 is in t's segment; otherwise, and for padding, {@link #IGNORE}.
   */
  public int[] targets(int[][] labels) {
    if (labels.length != batch) throw new IllegalArgumentException("labels have " + labels.length + " rows, inputs " + batch);
    int[] out = new int[batch * seq];
    for (int b = 0; b < batch; b++) {
      if (labels[b].length != seq)
        throw new IllegalArgumentException("labels row " + b + " has " + labels[b].length + " entries, inputs " + seq);
      for (int t = 0; t < seq; t++) {
        int i = b * seq + t;
        boolean sameSegment = t + 1 < seq && segments[i] != 0 && segments[i + 1] == segments[i];
        out[i] = sameSegment ? labels[b][t + 1] : IGNORE;
      }
    }
    return out;
  }
}
