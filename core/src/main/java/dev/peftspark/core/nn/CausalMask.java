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
 * <p>Prompt learning puts {@code nv} virtual tokens before every document, at positions {@code 0..nv-1}, so the
 * real tokens of a segment take positions {@code nv, nv+1, ...} (PEFT drops position ids and extends the attention
 * mask, so Hugging Face counts the virtual tokens). Prompt tuning's are rows of their own ({@code virtual}: the
 * first {@code nv} rows of every example, attending causally among themselves); prefix tuning's are keys only
 * ({@code prefix}: the first {@code nv} key columns). Every real query sees all of them, whatever its segment:
 * they are the same for every document, so a packed document still sees what it would see alone.
 *
 * @param seq       rows per example: {@code virtual + T}
 * @param bias      [B, seq, prefix + seq] 0 where attention is allowed, {@link #MASKED} elsewhere (added to the scores)
 * @param positions [B*seq] position of each row
 * @param segments  [B*seq] the mask, flattened ({@code -1} for virtual rows)
 * @param virtual   prompt tuning's virtual rows at the start of every example (0: none)
 * @param prefix    prefix tuning's virtual keys before every example's own (0: none)
 */
public record CausalMask(int batch, int seq, INDArray bias, int[] positions, int[] segments, int virtual, int prefix) {
  /** Added to masked scores: exp underflows to exactly 0 once the row maximum is subtracted. */
  public static final double MASKED = -1e9;
  /** Hugging Face's label for positions without a target. */
  public static final int IGNORE = -100;
  private static final int VIRTUAL = -1;

  public static CausalMask of(int[][] mask, int slidingWindow, DataType dtype) {
    return of(mask, slidingWindow, dtype, 0, 0);
  }

  /**
   * @param virtual prompt tuning's virtual rows per example (0: none)
   * @param prefix  prefix tuning's virtual keys per example (0: none); at most one of the two is non-zero
   */
  public static CausalMask of(int[][] mask, int slidingWindow, DataType dtype, int virtual, int prefix) {
    if (virtual < 0 || prefix < 0 || (virtual > 0 && prefix > 0))
      throw new IllegalArgumentException("virtual rows " + virtual + " and prefix keys " + prefix + ": at most one kind, never negative");
    int nv = virtual + prefix, batch = mask.length, tokens = mask[0].length, seq = virtual + tokens, keys = prefix + seq;
    int[] segments = new int[batch * seq], positions = new int[batch * seq];
    // -1e9 is exact in single precision, so one float[] serves both data types
    float[] bias = new float[batch * seq * keys];
    java.util.Arrays.fill(bias, (float) MASKED);
    for (int b = 0; b < batch; b++) {
      if (mask[b].length != tokens)
        throw new IllegalArgumentException("ragged attention mask: row " + b + " has " + mask[b].length + " entries, expected " + tokens);
      int[] run = new int[tokens];   // index within its segment's contiguous run
      for (int t = 0; t < tokens; t++) {
        int s = mask[b][t];
        if (s < 0) throw new IllegalArgumentException("attention mask row " + b + " position " + t + ": " + s + " is negative");
        run[t] = s != 0 && t > 0 && mask[b][t - 1] == s ? run[t - 1] + 1 : 0;
      }
      for (int i = 0; i < seq; i++) {
        int row = b * seq + i, t = i - virtual, from = row * keys;
        boolean isVirtual = i < virtual;
        int s = isVirtual ? VIRTUAL : mask[b][t];
        segments[row] = s;
        int qp = positions[row] = isVirtual ? i : s == 0 ? 0 : nv + run[t];
        bias[from + prefix + i] = 0;                                   // itself
        if (s == 0) continue;                                          // padding sees only itself
        // keys visible to a query form ranges (each column's rule is spelled out in CausalMaskTest's reference):
        // virtual keys (prefix keys, then prompt rows) at every earlier position, and the earlier tokens of its own
        // segment run; a sliding window keeps only positions above qp - window
        int lowest = slidingWindow > 0 ? qp - slidingWindow + 1 : 0;
        fill(bias, from + Math.max(0, lowest), from + Math.min(prefix, qp));
        fill(bias, from + prefix + Math.max(0, lowest), from + prefix + Math.min(virtual, qp));
        if (!isVirtual) {
          // the run's keys sit at rows i - run[t] .. i - 1, positions qp - run[t] .. qp - 1
          int firstRow = i - run[t];
          if (slidingWindow > 0) firstRow = Math.max(firstRow, i - slidingWindow + 1);
          fill(bias, from + prefix + firstRow, from + prefix + i);
        }
      }
    }
    return new CausalMask(batch, seq, biasArray(bias, dtype, batch, seq, keys), positions, segments, virtual, prefix);
  }

  /** Zeroes (allows) entries {@code from .. to - 1}; nothing when the range is empty. */
  private static void fill(float[] bias, int from, int to) {
    if (from < to) java.util.Arrays.fill(bias, from, to, 0f);
  }

  /** FLOAT through one bulk copy (ND4J's {@code createFromArray} copies element by element: ms per step at seq 256). */
  private static INDArray biasArray(float[] bias, DataType dtype, long... shape) {
    INDArray f = Floats.write(bias, shape);
    return dtype == DataType.FLOAT ? f : f.castTo(dtype);
  }

  /** Key columns per example: {@code prefix + seq}. */
  public int keys() { return prefix + seq; }

  /** Real tokens per example: {@code seq - virtual}. */
  public int tokens() { return seq - virtual; }

  /**
   * Next-token targets [B*seq] from labels aligned with the inputs (Hugging Face's convention: the model shifts):
   * position t predicts {@code labels[b][t+1]} when t+1 is in t's segment; otherwise, and for padding, {@link #IGNORE}.
   * Virtual rows predict nothing. (PEFT pads the labels with -100 for them, so after its shift the last virtual
   * token also predicts the first real token of the row; here, as without prompt learning, a document's first token
   * is never a target, so a batch's target count ({@code LmBatch.weight}) does not depend on the method and packed
   * documents are treated alike.)
   */
  public int[] targets(int[][] labels) {
    if (labels.length != batch) throw new IllegalArgumentException("labels have " + labels.length + " rows, inputs " + batch);
    int tokens = tokens();
    int[] out = new int[batch * seq];
    for (int b = 0; b < batch; b++) {
      if (labels[b].length != tokens)
        throw new IllegalArgumentException("labels row " + b + " has " + labels[b].length + " entries, inputs " + tokens);
      int base = b * seq;
      for (int i = 0; i < seq; i++) {
        int row = base + i;
        if (i < virtual) {
          out[row] = IGNORE;
          continue;
        }
        int t = i - virtual;
        boolean sameSegment = i + 1 < seq && segments[row] != 0 && segments[row + 1] == segments[row];
        out[row] = sameSegment ? labels[b][t + 1] : IGNORE;
      }
    }
    return out;
  }
}
