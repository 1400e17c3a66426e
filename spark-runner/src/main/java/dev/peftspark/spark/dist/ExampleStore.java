package dev.peftspark.spark.dist;

import dev.peftspark.datasets.Batch;
import dev.peftspark.spark.job.Tokenized;
import org.apache.spark.HashPartitioner;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The tokenized training set on the executors. It leaves the driver once, through a shuffle, into a cached RDD
 * keyed by example index (tasks of later stages carry no data; lost blocks are rebuilt from shuffle files).
 * Every epoch the examples are re-shuffled executor to executor into the epoch's {@link DataLayout}, one
 * {@link PartitionData} per partition, cached at the configured storage level until the epoch ends.
 */
final class ExampleStore implements AutoCloseable {
  private final JavaSparkContext sc;
  private final int partitions;
  private final StorageLevel level;
  private final int size;
  private final JavaPairRDD<Integer, int[]> examples;   // index -> ids followed by the label

  ExampleStore(JavaSparkContext sc, Tokenized train, int partitions, String storageLevel) {
    this.sc = sc;
    this.partitions = partitions;
    this.level = StorageLevel.fromString(storageLevel);
    this.size = train.size();
    List<Tuple2<Integer, int[]>> rows = new ArrayList<>(size);
    for (int i = 0; i < size; i++) {
      int[] ids = train.ids().get(i);
      int[] row = Arrays.copyOf(ids, ids.length + 1);
      row[ids.length] = train.labels()[i];
      rows.add(new Tuple2<>(i, row));
    }
    this.examples = sc.parallelizePairs(rows, partitions).partitionBy(new HashPartitioner(partitions))
        .setName("peft tokenized examples").persist(level);
  }

  /** The cached partitions for one epoch; close it when the epoch is done. */
  Epoch epoch(int epoch, List<Batch> batches) {
    Broadcast<int[]> owner = sc.broadcast(DataLayout.owners(batches, size, partitions));
    JavaRDD<PartitionData> rdd = examples
        .mapToPair(e -> new Tuple2<>(owner.value()[e._1()], e))
        .partitionBy(new HashPartitioner(partitions))
        .mapPartitionsWithIndex((p, it) -> List.of(PartitionData.of(p, it)).iterator(), true)
        .setName("peft epoch " + (epoch + 1) + " partitions")
        .persist(level);
    return new Epoch(rdd, owner);
  }

  @Override
  public void close() {
    examples.unpersist(false);
  }

  record Epoch(JavaRDD<PartitionData> rdd, Broadcast<int[]> owner) implements AutoCloseable {
    @Override
    public void close() {
      rdd.unpersist(false);
      owner.destroy();
    }
  }
}
