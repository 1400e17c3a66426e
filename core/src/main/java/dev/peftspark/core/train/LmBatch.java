package dev.peftspark.core.train;

import java.util.Arrays;

/**
 * One batch of causal-LM rows, all of the same length (padded or packed).
 *
 * @param ids    [B][T] token ids (any id where mask is 0)
 * @param mask   [B][T] 0 for padding, otherwise a segment id: 1 for a plain row, 1, 2, 3, ... for documents packed
 *               into one row (attention stays inside a segment; see {@code CausalMask})
 * @param labels [B][T] Hugging Face convention: aligned with {@code ids} (the model shifts them), -100 where no loss
 *               is taken (prompt tokens, padding); null means "the ids themselves"
 * @param tokens number of real (non-padding) tokens
 */
public record LmBatch(int[][] ids, int[][] mask, int[][] labels, int tokens) {
  public LmBatch {
    if (ids.length != mask.length || (labels != null && labels.length != ids.length))
      throw new IllegalArgumentException("ids, mask and labels must have the same number of rows");
  }

  public int size() { return ids.length; }

  public int seqLength() { return ids.length == 0 ? 0 : ids[0].length; }

  /** Rows [from, to) (same length: rows of a causal-LM batch are not trimmed, packing fills them). */
  public LmBatch slice(int from, int to) {
    int real = 0;
    for (int b = from; b < to; b++) for (int m : mask[b]) if (m != 0) real++;
    return new LmBatch(Arrays.copyOfRange(ids, from, to), Arrays.copyOfRange(mask, from, to),
        labels == null ? null : Arrays.copyOfRange(labels, from, to), real);
  }
}
