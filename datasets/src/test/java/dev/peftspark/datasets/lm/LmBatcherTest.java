package dev.peftspark.datasets.lm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peftspark.core.nn.CausalMask;
import dev.peftspark.core.train.LmBatch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

class LmBatcherTest {
  private static final int X = LmExample.IGNORE;

  /** Example k of length n: ids 100k+1 .. 100k+n, so every token says where it came from. */
  private static LmExample ex(int k, int n) {
    int[] ids = new int[n];
    for (int i = 0; i < n; i++) {
      ids[i] = 100 * k + i + 1;
    }
    return LmExample.ofText(ids);
  }

  private static List<LmExample> randomExamples(int count, int maxLen, long seed) {
    Random rng = new Random(seed);
    List<LmExample> out = new ArrayList<>();
    for (int k = 0; k < count; k++) {
      out.add(ex(k, 1 + rng.nextInt(maxLen)));
    }
    return out;
  }

  @Test
  void packingFillsRowsWithOneSegmentPerExampleAndContinuesLongOnes() {
    // Lengths 3, 5, 2 into rows of 4: [a a a b | b b b b | c c - -]; the second example is split.
    LmExample a = ex(1, 3);
    LmExample b = new LmExample(new int[] {201, 202, 203, 204, 205}, new int[] {X, X, 203, 204, 205});
    LmExample c = ex(3, 2);
    List<LmBatch> batches = new LmBatcher(List.of(a, b, c), 4, 2, true).eval();
    assertEquals(2, batches.size());
    LmBatch first = batches.get(0);
    assertArrayEquals(new int[][] {{101, 102, 103, 201}, {202, 203, 204, 205}}, first.ids());
    assertArrayEquals(new int[][] {{1, 1, 1, 2}, {1, 1, 1, 1}}, first.mask());
    assertArrayEquals(new int[][] {{101, 102, 103, X}, {X, 203, 204, 205}}, first.labels());
    assertEquals(8, first.tokens());
    LmBatch last = batches.get(1);
    assertArrayEquals(new int[][] {{301, 302, LmBatcher.PAD_ID, LmBatcher.PAD_ID}}, last.ids());
    assertArrayEquals(new int[][] {{1, 1, 0, 0}}, last.mask());
    assertArrayEquals(new int[][] {{301, 302, X, X}}, last.labels());
    assertEquals(2, last.tokens());
    // Targets (label of the next token in the same segment): a: 102, 103; b's lone 201: none (the split costs
    // one); b's tail: 203, 204, 205; c: 302.
    assertEquals(2 + 3 + 1, batches.stream().mapToLong(LmBatcher::targets).sum());
  }

  @Test
  void targetsAgreeWithCausalMaskAndNeverCrossADocument() {
    List<LmExample> examples = randomExamples(40, 30, 7);
    LmBatcher batcher = new LmBatcher(examples, 16, 4, true);
    long counted = 0;
    for (LmBatch b : batcher.epoch(3, 0)) {
      int[] targets = CausalMask.of(b.mask(), 0, DataType.FLOAT).targets(b.labels());
      long valid = Arrays.stream(targets).filter(t -> t != CausalMask.IGNORE).count();
      assertEquals(valid, LmBatcher.targets(b));
      counted += valid;
      for (int r = 0; r < b.size(); r++) {
        for (int t = 0; t < b.seqLength(); t++) {
          int target = targets[r * b.seqLength() + t];
          if (target != CausalMask.IGNORE) {   // the next token of the same example
            assertEquals(b.ids()[r][t] + 1, target);
          }
        }
      }
    }
    assertTrue(counted > 0);
    assertEquals(batcher.targetTokens(), batcher.eval().stream().mapToLong(LmBatcher::targets).sum());
  }

  @Test
  void everyInputTokenAppearsExactlyOnceAndSegmentsAreContiguousPieces() {
    List<LmExample> examples = randomExamples(57, 45, 11);
    LmBatcher batcher = new LmBatcher(examples, 32, 5, true);
    long total = examples.stream().mapToInt(LmExample::length).sum();
    assertEquals(total, batcher.tokens());
    assertEquals((total + 31) / 32, batcher.rows());
    for (List<LmBatch> batches : List.of(batcher.eval(), batcher.epoch(1, 0), batcher.epoch(1, 5))) {
      Map<Integer, Integer> seen = new HashMap<>();
      int rows = 0;
      for (LmBatch b : batches) {
        assertEquals(32, b.seqLength());
        rows += b.size();
        int real = 0;
        for (int r = 0; r < b.size(); r++) {
          int[] ids = b.ids()[r];
          int[] mask = b.mask()[r];
          for (int t = 0; t < 32; t++) {
            if (mask[t] == 0) {
              assertEquals(X, b.labels()[r][t]);
              assertTrue(t == 31 || mask[t + 1] == 0, "padding only at the end of a row");
              continue;
            }
            real++;
            seen.merge(ids[t], 1, Integer::sum);
            assertEquals(ids[t], b.labels()[r][t]);
            boolean starts = t == 0 || mask[t - 1] != mask[t];
            if (starts) {   // segments count 1, 2, 3, ... along the row
              assertEquals(t == 0 ? 1 : mask[t - 1] + 1, mask[t]);
            } else {        // within a segment: consecutive tokens of one example
              assertEquals(ids[t - 1] + 1, ids[t]);
            }
          }
        }
        assertEquals(real, b.tokens());
      }
      assertEquals(batcher.rows(), rows);
      assertEquals(total, seen.size());
      assertTrue(seen.values().stream().allMatch(n -> n == 1));
      for (LmExample e : examples) {
        for (int id : e.ids()) {
          assertTrue(seen.containsKey(id));
        }
      }
    }
  }

  @Test
  void paddingPutsOneExamplePerRowPaddedToTheLongestOfTheBatch() {
    LmExample a = ex(1, 3);
    LmExample b = new LmExample(new int[] {201, 202, 203, 204, 205, 206}, new int[] {X, X, 203, 204, 205, 206});
    LmExample c = ex(3, 2);
    List<LmBatch> batches = new LmBatcher(List.of(a, b, c), 5, 2, false).eval();
    assertEquals(2, batches.size());
    LmBatch first = batches.get(0);
    assertArrayEquals(new int[][] {{101, 102, 103, 0, 0}, {201, 202, 203, 204, 205}}, first.ids());
    assertArrayEquals(new int[][] {{1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}}, first.mask());
    assertArrayEquals(new int[][] {{101, 102, 103, X, X}, {X, X, 203, 204, 205}}, first.labels());
    assertEquals(8, first.tokens());
    LmBatch second = batches.get(1);
    assertArrayEquals(new int[][] {{301, 302}}, second.ids());
    assertArrayEquals(new int[][] {{1, 1}}, second.mask());
    assertEquals(2 + 3 + 1, new LmBatcher(List.of(a, b, c), 5, 2, false).targetTokens());
    assertEquals(3, new LmBatcher(List.of(a, b, c), 5, 2, false).rows());
  }

  @Test
  void paddedEpochsHoldEveryExampleOnceInBatchesOfSimilarLength() {
    List<LmExample> examples = randomExamples(400, 64, 13);
    LmBatcher batcher = new LmBatcher(examples, 64, 4, false);
    long padded = 0;
    long real = 0;
    Map<Integer, Integer> firstIds = new HashMap<>();
    for (LmBatch b : batcher.epoch(9, 2)) {
      padded += (long) b.size() * b.seqLength();
      real += b.tokens();
      for (int r = 0; r < b.size(); r++) {
        firstIds.merge(b.ids()[r][0], 1, Integer::sum);
        int len = examples.get(b.ids()[r][0] / 100).length();
        assertEquals(len, Arrays.stream(b.mask()[r]).sum());
      }
    }
    assertEquals(400, firstIds.size());
    assertEquals(batcher.tokens(), real);
    // Random batches of 4 lengths uniform in 1..64 would be about 60% real tokens; sorted chunks are above 95%.
    assertTrue(real > 0.95 * padded, real + " real of " + padded);
  }

  @Test
  void epochsAreDeterministicPerSeedAndDifferAcrossEpochsAndSeeds() {
    for (boolean packing : new boolean[] {true, false}) {
      LmBatcher batcher = new LmBatcher(randomExamples(30, 20, 5), 16, 4, packing);
      String e0 = describe(batcher.epoch(42, 0));
      assertEquals(e0, describe(batcher.epoch(42, 0)));
      assertEquals(e0, describe(new LmBatcher(randomExamples(30, 20, 5), 16, 4, packing).epoch(42, 0)));
      assertNotEquals(e0, describe(batcher.epoch(42, 1)));
      assertNotEquals(e0, describe(batcher.epoch(43, 0)));
      assertEquals(describe(batcher.eval()), describe(batcher.eval()));
      assertEquals(batcher.numBatches(), batcher.epoch(42, 1).size());
    }
    // eval keeps the input order
    List<LmBatch> eval = new LmBatcher(List.of(ex(1, 2), ex(2, 2), ex(3, 2)), 4, 8, false).eval();
    assertArrayEquals(new int[][] {{101, 102}, {201, 202}, {301, 302}}, eval.get(0).ids());
  }

  private static String describe(List<LmBatch> batches) {
    StringBuilder sb = new StringBuilder();
    for (LmBatch b : batches) {
      sb.append(Arrays.deepToString(b.ids())).append(Arrays.deepToString(b.mask()))
          .append(Arrays.deepToString(b.labels())).append('|');
    }
    return sb.toString();
  }
}
