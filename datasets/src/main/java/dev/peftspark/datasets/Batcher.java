package dev.peftspark.datasets;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Cuts tokenized examples into padded batches with little padding.
 *
 * <p>Training ({@link #epoch}): a seeded shuffle of all examples, then chunks of {@value #BUCKET_BATCHES}
 * batches each sorted by length and cut into batches, then the batch order shuffled. Batches hold examples of
 * similar length (little padding) while each epoch still mixes examples differently. The same seed and
 * epoch always give the same batches. Evaluation ({@link #eval}): everything sorted by length, once.
 */
public final class Batcher {
  public static final int PAD_ID = 0;
  /** Batches per length-sorted chunk: large enough for tight buckets, small enough to keep randomness. */
  public static final int BUCKET_BATCHES = 50;

  private final List<int[]> ids;
  private final int[] labels;
  private final int batchSize;

  /**
   * @param ids       token ids per example (unpadded)
   * @param labels    class id per example, or null for unlabelled data
   * @param batchSize examples per batch (the last batch of an epoch may be smaller)
   */
  public Batcher(List<int[]> ids, int[] labels, int batchSize) {
    if (batchSize < 1) {
      throw new IllegalArgumentException("batchSize must be >= 1, got " + batchSize);
    }
    if (labels != null && labels.length != ids.size()) {
      throw new IllegalArgumentException(ids.size() + " examples but " + labels.length + " labels");
    }
    this.ids = List.copyOf(ids);
    this.labels = labels == null ? null : labels.clone();
    this.batchSize = batchSize;
  }

  public int size() {
    return ids.size();
  }

  public int numBatches() {
    return (ids.size() + batchSize - 1) / batchSize;
  }

  /** The training batches of one epoch (0-based), deterministic in (seed, epoch). */
  public List<Batch> epoch(long seed, int epoch) {
    Random rng = new Random(mix(seed ^ mix(epoch + 0x632BE59BD9B4E019L)));
    int n = ids.size();
    int[] order = new int[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
    }
    shuffle(order, rng);
    int chunk = BUCKET_BATCHES * batchSize;
    for (int start = 0; start < n; start += chunk) {
      sortByLength(order, start, Math.min(n, start + chunk));
    }
    List<Batch> batches = cut(order);
    for (int i = batches.size() - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      batches.set(j, batches.set(i, batches.get(j)));
    }
    return batches;
  }

  /** Every example exactly once, sorted by length, in a fixed order. */
  public List<Batch> eval() {
    int[] order = new int[ids.size()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    sortByLength(order, 0, order.length);
    return cut(order);
  }

  /** Real tokens / padded positions over all batches (1.0: no padding at all). */
  public static double paddingEfficiency(List<Batch> batches) {
    long real = 0;
    long padded = 0;
    for (Batch b : batches) {
      real += b.tokens();
      padded += b.paddedTokens();
    }
    return padded == 0 ? 1.0 : (double) real / padded;
  }

  private List<Batch> cut(int[] order) {
    List<Batch> batches = new ArrayList<>(numBatches());
    for (int start = 0; start < order.length; start += batchSize) {
      int[] members = Arrays.copyOfRange(order, start, Math.min(order.length, start + batchSize));
      batches.add(Batch.of(ids, labels, members));
    }
    return batches;
  }

  /** Stable sort of order[from, to) by sequence length (ties keep their current order). */
  private void sortByLength(int[] order, int from, int to) {
    long[] keys = new long[to - from];
    for (int i = from; i < to; i++) {
      keys[i - from] = ((long) ids.get(order[i]).length << 32) | (i - from);
    }
    Arrays.sort(keys);
    int[] sorted = new int[keys.length];
    for (int k = 0; k < keys.length; k++) {
      sorted[k] = order[from + (int) keys[k]];
    }
    System.arraycopy(sorted, 0, order, from, sorted.length);
  }

  private static void shuffle(int[] a, Random rng) {
    for (int i = a.length - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      int t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }

  /** SplitMix64 finaliser: nearby (seed, epoch) pairs give unrelated Random seeds. */
  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
