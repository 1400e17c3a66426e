package dev.peftspark.core.train;

import java.util.Arrays;

import static dev.peftspark.core.nn.CausalMask.IGNORE;

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
public record LmBatch(int[][] ids, int[][] mask, int[][] labels, int tokens)
    implements TrainBatch<LmBatch>, java.io.Serializable {   // Serializable: the Spark runner caches rows on executors
  public LmBatch {
    if (ids.length != mask.length || (labels != null && labels.length != ids.length))
      throw new IllegalArgumentException("ids, mask and labels must have the same number of rows");
  }

  @Override public int size() { return ids.length; }

  /**
   * Target tokens: positions whose next token is in the same segment and not labelled -100 (what
   * {@code CausalMask.targets} selects), so a step's loss is the mean over all of them.
   */
  @Override
  public long weight() {
    long n = 0;
    for (int b = 0; b < ids.length; b++) {
      int[] m = mask[b], l = labels == null ? ids[b] : labels[b];
      for (int t = 0; t + 1 < m.length; t++) if (m[t] != 0 && m[t + 1] == m[t] && l[t + 1] != IGNORE) n++;
    }
    return n;
  }

  public int seqLength() { return ids.length == 0 ? 0 : ids[0].length; }

  /** Rows [from, to) (same length: rows of a causal-LM batch are not trimmed, packing fills them). */
  @Override
  public LmBatch slice(int from, int to) {
    int real = 0;
    for (int b = from; b < to; b++) for (int m : mask[b]) if (m != 0) real++;
    return new LmBatch(Arrays.copyOfRange(ids, from, to), Arrays.copyOfRange(mask, from, to),
        labels == null ? null : Arrays.copyOfRange(labels, from, to), real);
  }
}
