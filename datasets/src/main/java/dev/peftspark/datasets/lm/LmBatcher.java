package dev.peftspark.datasets.lm;

import dev.peftspark.core.train.LmBatch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Cuts causal-LM examples into {@link LmBatch}es of {@code batchSize} rows.
 *
 * <p>Packing: examples are laid end to end into rows of exactly {@code maxLength} tokens. Each piece of an example
 * in a row is a segment of its own (mask 1, 2, 3, ... along the row), so attention never crosses from one document
 * into another; an example that does not fit continues at the start of the next row as a new segment. Only the
 * last row has padding (mask 0, labels -100). Padding: one example per row (at most {@code maxLength} tokens,
 * longer ones keep their start), mask 1, right-padded to the longest row of its batch.
 *
 * <p>{@link #epoch} shuffles the examples with a seed derived from (seed, epoch) before packing or batching, so
 * every epoch mixes documents differently and the same (seed, epoch) always gives the same batches. Without
 * packing, each chunk of {@value #BUCKET_BATCHES} batches' worth of shuffled examples is sorted by length before it
 * is cut into batches, and the batch order is shuffled, so rows of a batch have similar lengths. {@link #eval}
 * keeps the input order.
 */
public final class LmBatcher {
  /** The id written where the mask is 0 (never attended to, never a target). */
  public static final int PAD_ID = 0;
  /** Padding mode: batches per length-sorted chunk of a shuffled epoch (as {@code datasets.Batcher}). */
  public static final int BUCKET_BATCHES = 50;

  private final List<LmExample> examples;
  private final int maxLength;
  private final int batchSize;
  private final boolean packing;

  public LmBatcher(List<LmExample> examples, int maxLength, int batchSize, boolean packing) {
    if (examples.isEmpty()) {
      throw new IllegalArgumentException("no examples to batch");
    }
    if (maxLength < 2) {
      throw new IllegalArgumentException("maxLength must be >= 2, got " + maxLength);
    }
    if (batchSize < 1) {
      throw new IllegalArgumentException("batchSize must be >= 1, got " + batchSize);
    }
    this.examples = packing ? List.copyOf(examples) : examples.stream().map(e -> e.truncated(maxLength)).toList();
    this.maxLength = maxLength;
    this.batchSize = batchSize;
    this.packing = packing;
  }

  /** max_length and packing from the options. */
  public static LmBatcher of(List<LmExample> examples, LmDataOptions opts, int batchSize) {
    return new LmBatcher(examples, opts.maxLength(), batchSize, opts.packing());
  }

  /** The batches of one epoch (0-based), deterministic in (seed, epoch). */
  public List<LmBatch> epoch(long seed, int epoch) {
    Random rng = new Random(mix(seed ^ mix(epoch + 0x632BE59BD9B4E019L)));
    int[] order = identity(examples.size());
    for (int i = order.length - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      int t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    if (packing) {
      return batches(order);
    }
    // Padding: batches of similar lengths (little padding), still mixed differently every epoch.
    int chunk = BUCKET_BATCHES * batchSize;
    for (int start = 0; start < order.length; start += chunk) {
      sortByLength(order, start, Math.min(order.length, start + chunk));
    }
    List<LmBatch> batches = batches(order);
    for (int i = batches.size() - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      batches.set(j, batches.set(i, batches.get(j)));
    }
    return batches;
  }

  /** Stable sort of order[from, to) by example length. */
  private void sortByLength(int[] order, int from, int to) {
    long[] keys = new long[to - from];
    for (int i = from; i < to; i++) {
      keys[i - from] = ((long) examples.get(order[i]).length() << 32) | (i - from);
    }
    Arrays.sort(keys);
    int[] sorted = new int[keys.length];
    for (int k = 0; k < keys.length; k++) {
      sorted[k] = order[from + (int) keys[k]];
    }
    System.arraycopy(sorted, 0, order, from, sorted.length);
  }

  /** Every example once, in input order. */
  public List<LmBatch> eval() {
    return batches(identity(examples.size()));
  }

  public int examples() {
    return examples.size();
  }

  /** Rows per epoch: packed rows (the same in every epoch), or one per example. */
  public int rows() {
    if (!packing) {
      return examples.size();
    }
    long tokens = tokens();
    return Math.toIntExact((tokens + maxLength - 1) / maxLength);
  }

  public int numBatches() {
    return (rows() + batchSize - 1) / batchSize;
  }

  /** Real (non-padding) tokens per epoch. */
  public long tokens() {
    long n = 0;
    for (LmExample e : examples) {
      n += e.length();
    }
    return n;
  }

  /** Next-token targets of the {@link #eval} batches: what a mean loss over one pass divides by. */
  public long targetTokens() {
    long n = 0;
    for (LmBatch b : eval()) {
      n += targets(b);
    }
    return n;
  }

  /**
   * Positions of the batch that predict something: t where t+1 is in t's segment and its label is not -100 (the
   * rule of core.nn.CausalMask#targets).
   */
  public static long targets(LmBatch batch) {
    long n = 0;
    for (int b = 0; b < batch.size(); b++) {
      int[] mask = batch.mask()[b];
      int[] labels = batch.labels() == null ? batch.ids()[b] : batch.labels()[b];
      for (int t = 0; t + 1 < mask.length; t++) {
        if (mask[t] != 0 && mask[t + 1] == mask[t] && labels[t + 1] != LmExample.IGNORE) {
          n++;
        }
      }
    }
    return n;
  }

  private List<LmBatch> batches(int[] order) {
    List<Row> rows = packing ? pack(order) : padRows(order);
    List<LmBatch> out = new ArrayList<>((rows.size() + batchSize - 1) / batchSize);
    for (int from = 0; from < rows.size(); from += batchSize) {
      List<Row> chunk = rows.subList(from, Math.min(rows.size(), from + batchSize));
      int width = packing ? maxLength : chunk.stream().mapToInt(r -> r.used).max().orElseThrow();
      int[][] ids = new int[chunk.size()][];
      int[][] mask = new int[chunk.size()][];
      int[][] labels = new int[chunk.size()][];
      int real = 0;
      for (int r = 0; r < chunk.size(); r++) {
        Row row = chunk.get(r);
        ids[r] = Arrays.copyOf(row.ids, width);
        mask[r] = Arrays.copyOf(row.mask, width);
        labels[r] = Arrays.copyOf(row.labels, width);
        Arrays.fill(ids[r], row.used, width, PAD_ID);
        Arrays.fill(labels[r], row.used, width, LmExample.IGNORE);
        real += row.used;
      }
      out.add(new LmBatch(ids, mask, labels, real));
    }
    return out;
  }

  /** Examples end to end; a new segment for every example and for every continuation in a new row. */
  private List<Row> pack(int[] order) {
    List<Row> rows = new ArrayList<>();
    Row row = new Row(maxLength);
    int segment = 0;
    for (int index : order) {
      LmExample e = examples.get(index);
      for (int off = 0; off < e.length(); ) {
        if (row.used == maxLength) {
          rows.add(row);
          row = new Row(maxLength);
          segment = 0;
        }
        segment++;
        int n = Math.min(maxLength - row.used, e.length() - off);
        System.arraycopy(e.ids(), off, row.ids, row.used, n);
        System.arraycopy(e.labels(), off, row.labels, row.used, n);
        Arrays.fill(row.mask, row.used, row.used + n, segment);
        row.used += n;
        off += n;
      }
    }
    if (row.used > 0) {
      rows.add(row);
    }
    return rows;
  }

  private List<Row> padRows(int[] order) {
    List<Row> rows = new ArrayList<>(order.length);
    for (int index : order) {
      LmExample e = examples.get(index);
      Row row = new Row(e.length());
      System.arraycopy(e.ids(), 0, row.ids, 0, e.length());
      System.arraycopy(e.labels(), 0, row.labels, 0, e.length());
      Arrays.fill(row.mask, 1);
      row.used = e.length();
      rows.add(row);
    }
    return rows;
  }

  /** A row under construction; positions from {@code used} on are padding. */
  private static final class Row {
    final int[] ids;
    final int[] mask;
    final int[] labels;
    int used;

    Row(int length) {
      ids = new int[length];
      mask = new int[length];
      labels = new int[length];
    }
  }

  private static int[] identity(int n) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    return a;
  }

  /** SplitMix64 finaliser: nearby (seed, epoch) pairs give unrelated Random seeds. */
  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
