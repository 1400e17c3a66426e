package dev.peftspark.datasets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

class BatcherTest {
  private static final Logger log = LoggerFactory.getLogger(BatcherTest.class);

  /** n sequences with lengths 2..maxLen; the ids encode (example, position) so mix-ups show. */
  private static List<int[]> synthetic(int n, int maxLen, long seed) {
    Random rng = new Random(seed);
    List<int[]> ids = new ArrayList<>();
    for (int e = 0; e < n; e++) {
      int[] seq = new int[2 + rng.nextInt(maxLen - 1)];
      for (int p = 0; p < seq.length; p++) {
        seq[p] = 1 + e * 1000 + p;
      }
      ids.add(seq);
    }
    return ids;
  }

  private static int[] labels(int n) {
    return IntStream.range(0, n).map(i -> i % 3).toArray();
  }

  private static List<List<Integer>> order(List<Batch> batches) {
    return batches.stream().map(b -> Arrays.stream(b.exampleIndex()).boxed().toList()).toList();
  }

  @Test
  void batchIsPaddedToItsLongestRowWithAMask() {
    List<int[]> ids = List.of(new int[] {101, 7, 102}, new int[] {101, 102}, new int[] {101, 5, 6, 9, 102});
    Batch b = Batch.of(ids, new int[] {1, 0, 2}, new int[] {2, 0});
    assertArrayEquals(new int[][] {{101, 5, 6, 9, 102}, {101, 7, 102, 0, 0}}, b.inputIds());
    assertArrayEquals(new int[][] {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}, b.attentionMask());
    assertArrayEquals(new int[] {2, 1}, b.labels());
    assertArrayEquals(new int[] {2, 0}, b.exampleIndex());
    assertEquals(8, b.tokens());
    assertEquals(10, b.paddedTokens());
    assertEquals(0.8, Batcher.paddingEfficiency(List.of(b)), 1e-12);
    assertNull(Batch.of(ids, null, new int[] {1}).labels());
  }

  @Test
  void everyEpochHoldsEveryExampleExactlyOnceWithItsOwnLabelAndIds() {
    int n = 1037;
    List<int[]> ids = synthetic(n, 60, 1);
    int[] labels = labels(n);
    Batcher batcher = new Batcher(ids, labels, 16);
    assertEquals(65, batcher.numBatches());
    for (int epoch = 0; epoch < 3; epoch++) {
      List<Batch> batches = batcher.epoch(42, epoch);
      assertEquals(65, batches.size());
      int[] seen = new int[n];
      int small = 0;
      for (Batch b : batches) {
        if (b.size() < 16) {
          small++;
          assertEquals(n % 16, b.size());
        }
        for (int r = 0; r < b.size(); r++) {
          int e = b.exampleIndex()[r];
          seen[e]++;
          assertEquals(labels[e], b.labels()[r]);
          int[] row = Arrays.copyOf(ids.get(e), b.width());
          assertArrayEquals(row, b.inputIds()[r]);
          assertEquals(ids.get(e).length, Arrays.stream(b.attentionMask()[r]).sum());
        }
      }
      assertEquals(1, small);
      int[] once = new int[n];
      Arrays.fill(once, 1);
      assertArrayEquals(once, seen);
    }
  }

  @Test
  void sameSeedSameBatchesOtherEpochOrSeedOtherOrder() {
    Batcher batcher = new Batcher(synthetic(500, 40, 2), labels(500), 8);
    assertEquals(order(batcher.epoch(7, 0)), order(batcher.epoch(7, 0)));
    assertEquals(order(batcher.epoch(7, 3)), order(new Batcher(synthetic(500, 40, 2), labels(500), 8).epoch(7, 3)));
    assertFalse(order(batcher.epoch(7, 0)).equals(order(batcher.epoch(7, 1))));
    assertFalse(order(batcher.epoch(7, 0)).equals(order(batcher.epoch(8, 0))));
    // Not merely the same batches reordered: the groupings differ too.
    var groupsA = new java.util.HashSet<>(order(batcher.epoch(7, 0)));
    var groupsB = new java.util.HashSet<>(order(batcher.epoch(7, 1)));
    groupsA.retainAll(groupsB);
    assertTrue(groupsA.size() < 10, "shared batches: " + groupsA.size());
  }

  @Test
  void bucketsHoldSimilarLengthsAndBatchOrderIsMixed() {
    int n = 4000;
    List<int[]> ids = synthetic(n, 120, 3);
    List<Batch> batches = new Batcher(ids, null, 16).epoch(1, 0);
    double bucketed = Batcher.paddingEfficiency(batches);
    double naive = Batcher.paddingEfficiency(naive(ids, null, 16, 1));
    log.info("synthetic uniform lengths: bucketed {} naive {}", bucketed, naive);
    assertTrue(bucketed > 0.95, "bucketed " + bucketed);
    assertTrue(naive < 0.65, "naive " + naive);
    // Batch widths are not sorted across the epoch (the batch order is shuffled).
    int[] widths = batches.stream().mapToInt(Batch::width).toArray();
    int[] sorted = widths.clone();
    Arrays.sort(sorted);
    assertFalse(Arrays.equals(sorted, widths));
  }

  @Test
  void evalIsSortedCoversEachOnceAndMapsBackToInputOrder() {
    int n = 301;
    List<int[]> ids = synthetic(n, 50, 4);
    List<Batch> batches = new Batcher(ids, labels(n), 32).eval();
    assertEquals(10, batches.size());
    int previous = 0;
    long[] perExample = new long[n];
    Arrays.fill(perExample, -1);
    for (Batch b : batches) {
      for (int r = 0; r < b.size(); r++) {
        int len = Arrays.stream(b.attentionMask()[r]).sum();
        assertTrue(len >= previous, "not sorted by length");
        previous = len;
        // A per-example "result" computed from the batch row, put back by exampleIndex.
        long sum = 0;
        for (int p = 0; p < b.width(); p++) {
          sum += (long) b.inputIds()[r][p] * b.attentionMask()[r][p];
        }
        assertEquals(-1, perExample[b.exampleIndex()[r]], "example seen twice");
        perExample[b.exampleIndex()[r]] = sum;
      }
    }
    for (int e = 0; e < n; e++) {
      assertEquals(Arrays.stream(ids.get(e)).asLongStream().sum(), perExample[e]);
    }
    assertEquals(order(batches), order(new Batcher(ids, labels(n), 32).eval()));
  }

  @Test
  void badArgumentsAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> new Batcher(List.of(new int[] {1}), null, 0));
    assertThrows(IllegalArgumentException.class, () -> new Batcher(List.of(new int[] {1}), new int[2], 4));
  }

  @Test
  void bucketingAvoidsMostPaddingOnTheSentimentData() {
    TestFiles.useOfflineDemoCache();
    ReadResult data = RecordReader.read(List.of("demo:sentiment/amazon.json", "demo:sentiment/imdb.json",
        "demo:sentiment/yelp.json"), ReaderOptions.defaults().withFields("text", "class"));
    Encoding enc;
    try (TextTokenizer tok = new TextTokenizer(TestFiles.miniLmTokenizer())) {
      enc = tok.encode(data.texts(), 128);
    }
    assertEquals(3000, enc.size());
    Batcher batcher = new Batcher(enc.ids(), data.labelIds(), 32);
    double bucketed = Batcher.paddingEfficiency(batcher.epoch(13, 0));
    double eval = Batcher.paddingEfficiency(batcher.eval());
    double naive = Batcher.paddingEfficiency(naive(enc.ids(), data.labelIds(), 32, 13));
    log.info("sentiment (3000 texts, batch 32, {} truncated): bucketed {} eval {} naive {}",
        enc.truncated(), bucketed, eval, naive);
    assertTrue(bucketed > 0.9, "bucketed " + bucketed);
    assertTrue(eval > bucketed, "eval " + eval);
    assertTrue(naive < 0.6, "naive " + naive);
  }

  /** The baseline: shuffled and cut, no length grouping. */
  private static List<Batch> naive(List<int[]> ids, int[] labels, int batchSize, long seed) {
    List<Integer> order = new ArrayList<>(IntStream.range(0, ids.size()).boxed().toList());
    Collections.shuffle(order, new Random(seed));
    List<Batch> batches = new ArrayList<>();
    for (int s = 0; s < order.size(); s += batchSize) {
      int[] members = order.subList(s, Math.min(order.size(), s + batchSize)).stream().mapToInt(i -> i).toArray();
      batches.add(Batch.of(ids, labels, members));
    }
    return batches;
  }
}
