package dev.peftspark.datasets;

import java.util.Arrays;
import java.util.List;

/**
 * A padded batch. Rows are as long as the longest example in the batch, padded with {@link Batcher#PAD_ID};
 * the mask is 1 on real tokens. {@code exampleIndex[i]} is row i's position in the batcher's input, so
 * results can be put back in input order. {@code labels} is null for unlabelled data.
 *
 * @param tokens real (unpadded) tokens in the batch
 */
public record Batch(int[][] inputIds, int[][] attentionMask, int[] labels, int[] exampleIndex, int tokens) {

  /** Packs the examples {@code exampleIndex} of {@code ids} (and {@code labels}, which may be null). */
  public static Batch of(List<int[]> ids, int[] labels, int[] exampleIndex) {
    int width = 0;
    for (int e : exampleIndex) {
      width = Math.max(width, ids.get(e).length);
    }
    int rows = exampleIndex.length;
    int[][] inputIds = new int[rows][width]; // zero-filled: Batcher.PAD_ID
    int[][] mask = new int[rows][width];
    int[] batchLabels = labels == null ? null : new int[rows];
    int tokens = 0;
    for (int r = 0; r < rows; r++) {
      int[] seq = ids.get(exampleIndex[r]);
      System.arraycopy(seq, 0, inputIds[r], 0, seq.length);
      Arrays.fill(mask[r], 0, seq.length, 1);
      tokens += seq.length;
      if (labels != null) {
        batchLabels[r] = labels[exampleIndex[r]];
      }
    }
    return new Batch(inputIds, mask, batchLabels, exampleIndex.clone(), tokens);
  }

  public int size() {
    return exampleIndex.length;
  }

  /** The padded sequence length. */
  public int width() {
    return inputIds.length == 0 ? 0 : inputIds[0].length;
  }

  /** Positions computed, padding included. */
  public int paddedTokens() {
    return size() * width();
  }
}
