package dev.peftspark.spark.dist;

import dev.peftspark.core.config.ConfigException;
import dev.peftspark.core.config.JobConfig;
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
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple2;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Data-parallel causal-LM fitting on Spark ({@code sync: gradient}). The driver owns the adapter and the
 * optimizer; executors rebuild the model from an {@link LmSpec} on their own cached base and hold the epoch's
 * rows ({@link LmShard}s, shuffled out once per epoch). Per step only the adapter values go out and only the
 * adapter gradients (with target-token counts) come back; the driver sums them in partition order and applies
 * them as the single-JVM trainer applies its step on the same global batch.
 */
public final class LmSparkFitter implements LmFitter {
  private static final Logger log = LoggerFactory.getLogger(LmSparkFitter.class);

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
    scala.Option<org.apache.spark.SparkContext> active = org.apache.spark.SparkContext$.MODULE$.getActive();
    boolean owned = given == null && active.isEmpty();
    JavaSparkContext sc = given != null ? given
        : active.isDefined() ? JavaSparkContext.fromSparkContext(active.get()) : SparkFitter.start(cfg);
    try {
      int partitions = cfg.spark().partitions() > 0 ? cfg.spark().partitions() : sc.defaultParallelism();
      return new Run(sc, model, batcher, cfg, partitions).fit(listener);
    } finally {
      ExecutorModels.restoreBlasThreads();   // local mode: the driver JVM ran the tasks
      if (owned) sc.stop();
    }
  }

  /** One fit: the driver loop. */
  private final class Run {
    private final JavaSparkContext sc;
    private final PeftCausalLm model;
    private final LmBatcher batcher;
    private final JobConfig cfg;
    private final int partitions, microRows, stepsPerEpoch;
    private final LmSpec spec;
    private final GradientUpdate update;
    private final boolean skipNonFinite;
    private final Checkpoints checkpoints;   // null: checkpoint.every_steps is 0
    private final List<StepMetrics> history = new ArrayList<>();
    private long bytesExchanged, overheadMs;

    Run(JavaSparkContext sc, PeftCausalLm model, LmBatcher batcher, JobConfig cfg, int partitions) {
      this.sc = sc;
      this.model = model;
      this.batcher = batcher;
      this.cfg = cfg;
      this.partitions = partitions;
      this.microRows = cfg.train().batchSize() / Math.max(1, cfg.train().gradAccum());
      this.stepsPerEpoch = batcher.numBatches();
      this.spec = LmSpec.of(cfg.model(), cfg.modelConfig(), cfg.train().seed(), model);
      this.update = new GradientUpdate(model.params().size(), model.decayMask(), cfg.train(), stepsPerEpoch);
      this.skipNonFinite = cfg.distributed().onNonFinite().equals("skip");
      this.checkpoints = cfg.checkpoint().everySteps() > 0
          ? new Checkpoints(cfg.outputDir(), sc.hadoopConfiguration()) : null;
    }

    /** Continues from the newest checkpoint, if any: parameters, optimizer state, step and metrics so far. */
    private int resume(TrainListener listener) throws IOException {
      if (checkpoints == null) return 0;
      var found = checkpoints.newest();
      if (found.isEmpty()) return 0;
      Checkpoints.State s = found.get();
      var ps = model.params();
      if (s.size() != ps.size() || s.seed() != cfg.train().seed() || s.step() > update.totalSteps()) {
        throw new IllegalStateException("checkpoint " + checkpoints.dir() + "/step-" + s.step() + " is from another "
            + "run (" + s.size() + " trainable parameters, seed " + s.seed() + ", step " + s.step() + "; this run: "
            + ps.size() + ", seed " + cfg.train().seed() + ", " + update.totalSteps() + " steps); remove "
            + checkpoints.dir() + " or choose another output_dir");
      }
      ps.values().assign(Nd4j.createFromArray(s.values()));
      update.optimizer().load(s.optimizer().toNd4j());
      for (StepMetrics m : s.history()) {
        history.add(m);
        listener.onStep(m);
      }
      log.info("resuming from {}/step-{}", checkpoints.dir(), s.step());
      return s.step();
    }

    private void checkpoint(int after) throws IOException {
      if (checkpoints == null || after % cfg.checkpoint().everySteps() != 0) return;
      checkpoints.write(new Checkpoints.State(after, cfg.train().seed(), model.params().size(),
          model.params().values().toFloatVector(), OptState.of(update.optimizer().state()), List.copyOf(history)));
    }

    Trainer.Result fit(TrainListener listener) throws IOException {
      int total = update.totalSteps();
      listener.onStart(total, model.trainableCount(), model.totalCount());
      log.info("spark master {}: {} partitions, sync gradient, {} trainable parameters cross the network per step",
          sc.master(), partitions, model.trainableCount());
      long start = System.nanoTime(), examples = 0, tokens = 0;
      int resumed = resume(listener), step = resumed, skip = resumed, epoch = 0;
      double lastLoss = Double.NaN;
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
            StepMetrics m = step(rdd, batches.get(i), i, step, epoch, start);
            history.add(m);
            listener.onStep(m);
            examples += m.examples();
            tokens += m.tokens();
            lastLoss = m.loss();
            checkpoint(++step);
          }
        } finally {
          rdd.unpersist(false);
        }
        skip = 0;
      }
      int here = step - resumed;
      distributed = new TrainSummary.Distributed("gradient", partitions, here == 0 ? 0 : bytesExchanged / here,
          model.totalCount() * 4L * 2 * partitions, overheadMs, resumed);
      return new Trainer.Result(step, epoch, lastLoss, (System.nanoTime() - start) / 1_000_000, examples, tokens);
    }

    private StepMetrics step(JavaRDD<LmShard> rdd, LmBatch batch, int inEpoch, int step, int epoch, long start) {
      long t0 = System.nanoTime();
      var ps = model.params();
      long targets = batch.weight();
      var request = new LmGradientTask.Request(step, inEpoch, ps.values().toFloatVector());
      var payload = StepPayload.of(sc, request, request.bytes());
      List<LmGradientTask.Result> results;
      long submitted = System.currentTimeMillis(), collected;
      try (payload) {
        String what = "peft step " + (step + 1) + ": adapter gradients";
        sc.setJobDescription(what);
        sc.setCallSite(what);
        results = rdd.mapPartitionsWithIndex(new LmGradientTask(spec, payload, targets, microRows), true).collect()
            .stream().sorted(Comparator.comparingInt(LmGradientTask.Result::partition)).toList();
        collected = System.currentTimeMillis();
      }
      long t1 = System.nanoTime();
      // Sum in partition order: the same bits on every rerun and after any task retry.
      float[] sum = new float[(int) Math.max(1, ps.size())];
      double loss = 0;
      long fromBytes = 0, counted = 0;
      String bad = null;
      for (LmGradientTask.Result r : results) {
        fromBytes += r.bytes();
        loss += r.loss();
        counted += r.targets();
        if (bad == null && (!Double.isFinite(r.loss()) || !Double.isFinite(r.gradNorm2()))) {
          bad = "partition " + r.partition() + ": " + (Double.isFinite(r.loss()) ? "gradient norm² is "
              + r.gradNorm2() : "loss is " + r.loss());
        }
        if (r.grads() != null) for (int i = 0; i < sum.length; i++) sum[i] += r.grads()[i];
      }
      if (counted != targets) {
        throw new IllegalStateException("step " + (step + 1) + ": the partitions saw " + counted
            + " target tokens, the global batch has " + targets);
      }
      double norm = Double.NaN;
      if (bad != null) {
        String msg = "step " + (step + 1) + " (" + bad + "); the step was not applied";
        if (!skipNonFinite) throw new Trainer.NonFiniteException(msg + " and nothing was saved (try a lower train.lr)");
        log.warn("{}; skipped (distributed.on_non_finite: skip)", msg);
      } else {
        norm = update.apply(ps.values(), Nd4j.createFromArray(sum), loss, step, "");
      }
      long t2 = System.nanoTime();
      var job = TaskTiming.job(results.stream().map(LmGradientTask.Result::timing).toList(), submitted, collected);
      long jobMs = (t1 - t0) / 1_000_000;
      var x = new StepMetrics.Exchange(request.bytes() * partitions, fromBytes, partitions, job.computeMs(),
          Math.max(0, jobMs - job.computeMs()), (t2 - t1) / 1_000_000, payload.driverMs(), job.launchMs(),
          job.readMs(), job.resultMs());
      bytesExchanged += x.bytesToExecutors() + x.bytesFromExecutors();
      overheadMs += x.sparkOverheadMs();
      double seconds = (t2 - t0) / 1e9;
      return new StepMetrics(step + 1, epoch + 1, loss, update.schedule().at(step), norm, batch.size() / seconds,
          batch.tokens() / seconds, (t2 - start) / 1_000_000, batch.size(), batch.tokens(), x);
    }
  }
}
