package dev.peftspark.spark.dist;

import dev.peftspark.datasets.Batch;

import java.util.List;

/**
 * Which partition computes which example in an epoch. Within every global batch (length-bucketed by the
 * Batcher, so its members are sorted by length), member i goes to partition i mod P: each partition gets the
 * same number of examples, ±1, and about the same number of tokens, in every step. Every example of the
 * epoch has exactly one owner.
 */
public final class DataLayout {
  private DataLayout() {}

  public static int[] owners(List<Batch> epoch, int examples, int partitions) {
    int[] owner = new int[examples];
    java.util.Arrays.fill(owner, -1);
    for (Batch b : epoch) {
      int[] members = b.exampleIndex();
      for (int i = 0; i < members.length; i++) owner[members[i]] = i % partitions;
    }
    for (int e = 0; e < examples; e++) {
      if (owner[e] < 0) throw new IllegalStateException("example " + e + " is in no batch of the epoch");
    }
    return owner;
  }
}
