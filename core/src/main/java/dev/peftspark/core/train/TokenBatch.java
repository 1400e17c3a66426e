package dev.peftspark.core.train;

/**
 * One batch of tokenized examples, padded to its longest row.
 *
 * @param ids    [B][T] token ids (pad id where mask is 0)
 * @param mask   [B][T] 1 for real tokens
 * @param labels [B] class ids
 * @param tokens number of real tokens
 */
public record TokenBatch(int[][] ids, int[][] mask, int[] labels, int tokens) implements TrainBatch<TokenBatch> {
  @Override public int size() { return ids.length; }

  /** Classification loss is a mean over examples. */
  @Override public long weight() { return ids.length; }

  /** Rows [from, to) as a batch trimmed to their own longest row. */
  @Override public TokenBatch slice(int from, int to) {
    int len = 0, real = 0;
    for (int b = from; b < to; b++) {
      int n = 0;
      for (int m : mask[b]) n += m;
      real += n;
      for (int t = 0; t < mask[b].length; t++) if (mask[b][t] != 0) len = Math.max(len, t + 1);
    }
    int[][] i = new int[to - from][], m = new int[to - from][];
    int[] l = new int[to - from];
    for (int b = from; b < to; b++) {
      i[b - from] = java.util.Arrays.copyOf(ids[b], len);
      m[b - from] = java.util.Arrays.copyOf(mask[b], len);
      l[b - from] = labels[b];
    }
    return new TokenBatch(i, m, l, real);
  }
}
