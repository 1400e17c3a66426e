package dev.peftspark.spark.dist;

import dev.peftspark.core.train.TokenBatch;
import dev.peftspark.datasets.Batch;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Iterator;
import scala.Tuple2;

/**
 * The tokenized examples one partition holds for an epoch (cached by Spark), looked up by their index in the
 * training set.
 *
 * @param index  global example indices, ascending
 * @param ids    token ids per example, same order
 * @param labels class id per example, same order
 */
public record PartitionData(int partition, int[] index, int[][] ids, int[] labels) implements Serializable {

  /** Gathers {@code (owner, (index, ids + label))} records (an example's label is its last int). */
  public static PartitionData of(int partition, Iterator<Tuple2<Integer, Tuple2<Integer, int[]>>> records) {
    java.util.ArrayList<Tuple2<Integer, int[]>> all = new java.util.ArrayList<>();
    records.forEachRemaining(r -> all.add(r._2()));
    all.sort((a, b) -> Integer.compare(a._1(), b._1()));
    int n = all.size();
    int[] index = new int[n], labels = new int[n];
    int[][] ids = new int[n][];
    for (int i = 0; i < n; i++) {
      int[] row = all.get(i)._2();
      index[i] = all.get(i)._1();
      ids[i] = Arrays.copyOf(row, row.length - 1);
      labels[i] = row[row.length - 1];
    }
    return new PartitionData(partition, index, ids, labels);
  }

  /**
   * The members of a global batch this partition holds, in the batch's order, padded to their own longest row;
   * null when it holds none of them.
   */
  public TokenBatch select(int[] globalBatch) {
    int[] local = Arrays.stream(globalBatch).map(g -> Arrays.binarySearch(index, g)).filter(i -> i >= 0).toArray();
    if (local.length == 0) return null;
    Batch b = Batch.of(Arrays.asList(ids), labels, local);
    return new TokenBatch(b.inputIds(), b.attentionMask(), b.labels(), b.tokens());
  }

  public int size() { return index.length; }
}
