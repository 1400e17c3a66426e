package dev.peftspark.spark.dist;

import dev.peftspark.core.train.LmBatch;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * One partition's rows of every global step of an epoch (cached by Spark until the epoch ends). Row r of a
 * global batch goes to partition r mod P: each partition gets the same number of rows, ±1, in every step.
 *
 * @param steps per step of the epoch, this partition's rows in the batch's order; null where it holds none
 */
public record LmShard(int partition, ArrayList<LmBatch> steps) implements Serializable {

  /** The epoch's global batches cut into {@code partitions} shards (index p: partition p). */
  public static List<LmShard> split(List<LmBatch> epoch, int partitions) {
    List<LmShard> out = new ArrayList<>(partitions);
    for (int p = 0; p < partitions; p++) {
      ArrayList<LmBatch> steps = new ArrayList<>(epoch.size());
      for (LmBatch b : epoch) steps.add(rows(b, p, partitions));
      out.add(new LmShard(p, steps));
    }
    return out;
  }

  /** Rows p, p + P, p + 2P, ... of {@code batch}; null when there are none. */
  static LmBatch rows(LmBatch batch, int p, int partitions) {
    int n = batch.size() <= p ? 0 : (batch.size() - p + partitions - 1) / partitions;
    if (n == 0) return null;
    int[][] ids = new int[n][], mask = new int[n][], labels = batch.labels() == null ? null : new int[n][];
    int real = 0;
    for (int i = 0; i < n; i++) {
      int r = p + i * partitions;
      ids[i] = batch.ids()[r];
      mask[i] = batch.mask()[r];
      if (labels != null) labels[i] = batch.labels()[r];
      for (int m : mask[i]) if (m != 0) real++;
    }
    return new LmBatch(ids, mask, labels, real);
  }
}
