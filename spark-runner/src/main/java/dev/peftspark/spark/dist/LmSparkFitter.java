package dev.peftspark.spark.dist;

import dev.peftspark.core.config.ConfigException;
import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.nn.Floats;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.train.GradientUpdate;
import dev.peftspark.core.train.LmBatch;
import dev.peftspark.core.train.StepMetrics;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.core.train.Trainer;
import dev.peftspark.datasets.lm.LmBatcher;
import dev.peftspark.spark.job.LmFitter;
import org.apache.spark.HashPartitioner;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Data-parallel causal-LM fitting on Spark ({@code sync: gradient}). The driver owns the adapter and the
 * optimizer; executors rebuild the model from an {@link LmSpec} on their own cached base and hold the epoch's
 * rows ({@link LmShard}s, shuffled out once per epoch). Per step only the adapter values go out and only the
 * adapter gradients (with target-token counts) come back; they are summed with a fixed shape ({@link GradientSum},
 * {@code distributed.aggregation_depth}) and the driver applies
 * them as the single-JVM trainer applies its step on the same global batch.
 */
public final class LmSparkFitter implements LmFitter {
  private final JavaSparkContext given;   // null: the running context, else one started from the config
  private TrainSummary.Distributed distributed;

  /** @param sc a running context to use (tests, embedding apps), or null */
  public LmSparkFitter(JavaSparkContext sc) {
    this.given = sc;
  }

  /** Refuses what the causal-LM Spark path does not do yet ({@code sync: average}), naming the key. */
  public static void checkSupported(JobConfig cfg) {
    if (!cfg.distributed().sync().equals("gradient")) {
      throw new ConfigException("distributed.sync", cfg.distributed().sync() + " is not available for task: "
          + "causal_lm yet; use gradient");
    }
  }

  @Override
  public TrainSummary.Distributed distributed() { return distributed; }

  @Override
  public Trainer.Result fit(PeftCausalLm model, LmBatcher batcher, JobConfig cfg, TrainListener listener)
      throws IOException {
    checkSupported(cfg);
    return DriverLoop.onContext(given, cfg,
        (sc, partitions) -> new Run(sc, model, batcher, cfg, partitions, listener).fit());
  }

  /** One fit: walks the epochs as the local trainer does; {@link DriverLoop} does each step's driver work. */
  private final class Run {
    private final JavaSparkContext sc;
    private final PeftCausalLm model;
    private final LmBatcher batcher;
    private final JobConfig cfg;
    private final int partitions, microRows;
    private final LmSpec spec;
    private final GradientUpdate update;
    private final DriverLoop driver;

    Run(JavaSparkContext sc, PeftCausalLm model, LmBatcher batcher, JobConfig cfg, int partitions,
        TrainListener listener) {
      this.sc = sc;
      this.model = model;
      this.batcher = batcher;
      this.cfg = cfg;
      this.partitions = partitions;
      this.microRows = cfg.train().batchSize() / Math.max(1, cfg.train().gradAccum());
      this.spec = LmSpec.of(cfg.model(), cfg.modelConfig(), cfg.train().seed(), model);
      this.update = new GradientUpdate(model.params().size(), model.decayMask(), cfg.train(), batcher.numBatches());
      this.driver = new DriverLoop(sc, cfg, model.params(), update, partitions, listener);
    }

    Trainer.Result fit() throws IOException {
      int total = update.totalSteps();
      int resumed = driver.begin(model.trainableCount(), model.totalCount()), step = resumed, skip = resumed;
      int epoch = 0;
      StorageLevel level = StorageLevel.fromString(cfg.spark().storageLevel());
      // Epochs as the local trainer walks them: every batch of epoch e, then e + 1 (a resumed run skips ahead).
      for (; step < total; epoch++) {
        List<LmBatch> batches = batcher.epoch(cfg.train().seed(), epoch);
        if (batches.isEmpty()) throw new IllegalStateException("epoch " + (epoch + 1) + " has no batch");
        if (skip >= batches.size()) {
          skip -= batches.size();
          continue;
        }
        List<Tuple2<Integer, LmShard>> shards = new ArrayList<>();
        for (LmShard s : LmShard.split(batches, partitions)) shards.add(new Tuple2<>(s.partition(), s));
        // Through a shuffle: later steps' tasks carry no rows (partition p holds shard p).
        JavaRDD<LmShard> rdd = sc.parallelizePairs(shards, partitions).partitionBy(new HashPartitioner(partitions))
            .values().setName("peft epoch " + (epoch + 1) + " rows").persist(level);
        try {
          for (int i = skip; i < batches.size() && step < total; i++) {
            driver.record(step, List.of(step(rdd, batches.get(i), i, step, epoch)));
            step++;
          }
        } finally {
          rdd.unpersist(false);
        }
        skip = 0;
      }
      distributed = driver.summary(model.totalCount(), 1);
      return driver.result(step, epoch);
    }

    private StepMetrics step(JavaRDD<LmShard> rdd, LmBatch batch, int inEpoch, int step, int epoch) {
      long targets = batch.weight();
      var request = new LmGradientTask.Request(step, inEpoch, Floats.read(model.params().values()));
      return driver.gradientStep(step, epoch, request, request.bytes(),
          payload -> rdd.mapPartitionsWithIndex(new LmGradientTask(spec, payload, targets, microRows), true),
          targets, batch.size(), batch.tokens());
    }
  }
}
