package dev.peftspark.spark.dist;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.train.GradientUpdate;
import dev.peftspark.core.train.StepMetrics;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.core.train.Trainer;
import dev.peftspark.datasets.Batch;
import dev.peftspark.datasets.Batcher;
import dev.peftspark.spark.job.Fitter;
import dev.peftspark.spark.job.Tokenized;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;

/**
 * Data-parallel fitting on Spark. The driver owns the adapter and the optimizer; executors own the frozen base
 * (each loads it once per JVM) and the cached tokenized partitions. Per optimizer step ({@code sync: gradient})
 * only the adapter values go out (a {@link StepPayload}: in the task closure up to 1 MiB, else a broadcast
 * destroyed after the step) and only the adapter gradients come
 * back; the driver sums them in partition order and applies them exactly as the single-JVM trainer would. With
 * {@code sync: average}, partitions take {@code average_every} local steps between averages.
 */
public final class SparkFitter implements Fitter {
  private static final Logger log = LoggerFactory.getLogger(SparkFitter.class);

  private final JavaSparkContext given;   // null: create (and stop) one from the config
  private TrainSummary.Distributed distributed;
  private StepCounters counters;

  /** @param sc a running context to use (tests, embedding apps), or null to start one from {@code spark.*} */
  public SparkFitter(JavaSparkContext sc) {
    this.given = sc;
  }

  @Override
  public TrainSummary.Distributed distributed() { return distributed; }

  /** The last fit's accumulators (examples, tokens, summed loss), as the Spark UI shows them. */
  public StepCounters counters() { return counters; }

  @Override
  public Trainer.Result fit(PeftClassifier model, Tokenized train, JobConfig cfg, TrainListener listener)
      throws java.io.IOException {
    // a context already running in this JVM (an application embedding the job, a test suite) is used, not stopped
    scala.Option<org.apache.spark.SparkContext> active = org.apache.spark.SparkContext$.MODULE$.getActive();
    boolean owned = given == null && active.isEmpty();
    JavaSparkContext sc = given != null ? given
        : active.isDefined() ? JavaSparkContext.fromSparkContext(active.get()) : start(cfg);
    try {
      int partitions = cfg.spark().partitions() > 0 ? cfg.spark().partitions() : sc.defaultParallelism();
      Run run = new Run(sc, model, train, cfg, partitions, listener);
      counters = run.counters;
      Trainer.Result r = run.fit();
      distributed = run.summary();
      return r;
    } finally {
      ExecutorModels.restoreBlasThreads();   // local mode: the driver JVM ran the tasks
      if (owned) sc.stop();
    }
  }

  /** A context for {@code runner: spark}: spark-submit's master and conf win over {@code spark.master}. */
  static JavaSparkContext start(JobConfig cfg) {
    SparkConf conf = new SparkConf().setAppName("peft-spark " + cfg.method() + " " + cfg.outputDir());
    if (!conf.contains("spark.master")) conf.setMaster(cfg.spark().master());
    return new JavaSparkContext(conf);
  }

  /** One fit: the driver loop and its bookkeeping. */
  private static final class Run {
    private final JavaSparkContext sc;
    private final PeftClassifier model;
    private final JobConfig cfg;
    private final int partitions, microRows, stepsPerEpoch;
    private final Batcher batcher;
    private final ModelSpec spec;
    private final GradientUpdate update;
    private final ExampleStore store;
    private final TrainListener listener;
    private final boolean skipNonFinite;
    private final Checkpoints checkpoints;   // null: checkpoint.every_steps is 0
    private final StepCounters counters;
    private final List<StepMetrics> history = new java.util.ArrayList<>();
    private long bytesExchanged, overheadMs;
    private int resumedFrom, stepsHere;

    Run(JavaSparkContext sc, PeftClassifier model, Tokenized train, JobConfig cfg, int partitions,
        TrainListener listener) {
      this.sc = sc;
      this.model = model;
      this.cfg = cfg;
      this.partitions = partitions;
      this.listener = listener;
      this.microRows = cfg.train().batchSize() / cfg.train().gradAccum();
      this.batcher = train.batcher(cfg.train().batchSize());
      this.stepsPerEpoch = batcher.numBatches();
      this.spec = ModelSpec.of(cfg.model(), model, cfg.train());
      this.update = new GradientUpdate(model.params().size(), model.decayMask(), cfg.train(), stepsPerEpoch);
      this.store = new ExampleStore(sc, train, partitions, cfg.spark().storageLevel());
      this.skipNonFinite = cfg.distributed().onNonFinite().equals("skip");
      this.counters = StepCounters.register(sc);
      this.checkpoints = cfg.checkpoint().everySteps() > 0
          ? new Checkpoints(cfg.outputDir(), sc.hadoopConfiguration()) : null;
    }

    /** Continues from the newest checkpoint, if any: parameters, optimizer state, step and metrics so far. */
    private int resume() throws java.io.IOException {
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
      ps.values().assign(org.nd4j.linalg.factory.Nd4j.createFromArray(s.values()));
      update.optimizer().load(s.optimizer().toNd4j());
      for (StepMetrics m : s.history()) {
        history.add(m);
        listener.onStep(m);
      }
      log.info("resuming from {}/step-{}", checkpoints.dir(), s.step());
      return s.step();
    }

    private void checkpoint(int before, int after) throws java.io.IOException {
      int every = cfg.checkpoint().everySteps();
      if (checkpoints == null || before / every == after / every) return;
      checkpoints.write(new Checkpoints.State(after, cfg.train().seed(), model.params().size(),
          model.params().values().toFloatVector(), OptState.of(update.optimizer().state()), List.copyOf(history)));
    }

    Trainer.Result fit() throws java.io.IOException {
      int total = update.totalSteps();
      listener.onStart(total, model.trainableCount(), model.totalCount());
      log.info("spark master {}: {} partitions, sync {}, {} trainable parameters cross the network per step",
          sc.master(), partitions, cfg.distributed().sync(), model.trainableCount());
      long start = System.nanoTime();
      int step = resumedFrom = resume();
      long examples = 0, tokens = 0;
      double lastLoss = Double.NaN;
      boolean average = cfg.distributed().sync().equals("average");
      try {
        while (step < total) {
          int epoch = step / stepsPerEpoch;
          List<Batch> batches = batcher.epoch(cfg.train().seed(), epoch);
          try (ExampleStore.Epoch data = store.epoch(epoch, batches)) {
            int end = Math.min(total, (epoch + 1) * stepsPerEpoch);
            while (step < end) {
              int k = average ? Math.min(cfg.distributed().averageEvery(), end - step) : 1;
              List<Batch> round = batches.subList(step % stepsPerEpoch, step % stepsPerEpoch + k);
              List<StepMetrics> done = average ? averageRound(data, round, step, epoch, start)
                  : List.of(gradientStep(data, round.get(0), step, epoch, start));
              for (StepMetrics m : done) {
                history.add(m);
                listener.onStep(m);
                examples += m.examples();
                tokens += m.tokens();
                lastLoss = m.loss();
              }
              checkpoint(step, step + k);
              step += k;
              stepsHere += k;
            }
          }
        }
      } finally {
        store.close();
      }
      return new Trainer.Result(step, (step + stepsPerEpoch - 1) / stepsPerEpoch, lastLoss,
          (System.nanoTime() - start) / 1_000_000, examples, tokens);
    }

    private StepMetrics gradientStep(ExampleStore.Epoch data, Batch batch, int step, int epoch, long start) {
      long t0 = System.nanoTime();
      var ps = model.params();
      var request = new GradientTask.Request(step, ps.values().toFloatVector(), batch.exampleIndex());
      var payload = StepPayload.of(sc, request, request.bytes());
      List<GradientTask.Result> results;
      long submitted = System.currentTimeMillis(), collected;
      try (payload) {
        describe(step, "adapter gradients");
        results = data.rdd().mapPartitionsWithIndex(
            new GradientTask(spec, payload, batch.size(), microRows, counters), true).collect();
        collected = System.currentTimeMillis();
      }
      long t1 = System.nanoTime();
      // Sum in partition order: the same bits on every rerun and after any task retry.
      float[] sum = new float[(int) Math.max(1, ps.size())];
      double loss = 0;
      long fromBytes = 0;
      String bad = null;
      for (GradientTask.Result r : sorted(results)) {
        fromBytes += r.bytes();
        loss += r.loss();
        if (bad == null && (!Double.isFinite(r.loss()) || !Double.isFinite(r.gradNorm2()))) {
          bad = "partition " + r.partition() + ": " + (Double.isFinite(r.loss()) ? "gradient norm² is "
              + r.gradNorm2() : "loss is " + r.loss());
        }
        if (r.grads() != null) for (int i = 0; i < sum.length; i++) sum[i] += r.grads()[i];
      }
      double norm = Double.NaN;
      if (bad != null) {
        String msg = "step " + (step + 1) + " (" + bad + "); the step was not applied";
        if (!skipNonFinite) throw new Trainer.NonFiniteException(msg + " and nothing was saved (try a lower train.lr)");
        log.warn("{}; skipped (distributed.on_non_finite: skip)", msg);
      } else {
        norm = update.apply(ps.values(), org.nd4j.linalg.factory.Nd4j.createFromArray(sum), loss, step, "");
      }
      long t2 = System.nanoTime();
      long toBytes = request.bytes() * partitions;
      long jobMs = (t1 - t0) / 1_000_000;
      var x = exchange(toBytes, fromBytes, jobMs, (t2 - t1) / 1_000_000, payload,
          TaskTiming.job(results.stream().map(GradientTask.Result::timing).toList(), submitted, collected));
      account(x);
      double seconds = (t2 - t0) / 1e9;
      return new StepMetrics(step + 1, epoch + 1, loss, update.schedule().at(step), norm, batch.size() / seconds,
          batch.tokens() / seconds, (t2 - start) / 1_000_000, batch.size(), batch.tokens(), x);
    }

    private List<StepMetrics> averageRound(ExampleStore.Epoch data, List<Batch> round, int first, int epoch,
                                           long start) {
      long t0 = System.nanoTime();
      int k = round.size();
      var ps = model.params();
      int[][] members = new int[k][];
      double[] lrs = new double[k];
      for (int j = 0; j < k; j++) {
        members[j] = round.get(j).exampleIndex();
        lrs[j] = update.schedule().at(first + j);
      }
      var request = new AverageTask.Request(first, ps.values().toFloatVector(),
          OptState.of(update.optimizer().state()), members, lrs);
      var payload = StepPayload.of(sc, request, request.bytes());
      List<AverageTask.Result> results;
      long submitted = System.currentTimeMillis(), collected;
      try (payload) {
        describe(first, "local steps " + (first + 1) + "-" + (first + k) + " and parameter averaging");
        results = sorted(data.rdd().mapPartitionsWithIndex(
            new AverageTask(spec, payload, microRows, skipNonFinite, counters), true).collect());
        collected = System.currentTimeMillis();
      }
      long t1 = System.nanoTime();
      for (AverageTask.Result r : results) {
        if (r.nonFinite() != null) {
          throw new Trainer.NonFiniteException(r.nonFinite() + "; the round was not applied and nothing was saved "
              + "(try a lower train.lr)");
        }
      }
      double[] weights = results.stream().mapToDouble(AverageTask.Result::weight).toArray();
      long fromBytes = results.stream().mapToLong(AverageTask.Result::bytes).sum();
      if (java.util.Arrays.stream(weights).sum() > 0) {
        float[] avg = new float[(int) Math.max(1, ps.size())];
        OptState.average(results.stream().map(AverageTask.Result::values).toList(), weights,
            java.util.Arrays.stream(weights).sum(), avg);
        ps.values().assign(org.nd4j.linalg.factory.Nd4j.createFromArray(avg));
        update.optimizer().load(OptState.average(results.stream().map(AverageTask.Result::state).toList(), weights)
            .toNd4j());
      }
      long t2 = System.nanoTime();
      long jobMs = (t1 - t0) / 1_000_000;
      var x = exchange(request.bytes() * partitions, fromBytes, jobMs, (t2 - t1) / 1_000_000, payload,
          TaskTiming.job(results.stream().map(AverageTask.Result::timing).toList(), submitted, collected));
      account(x);
      double seconds = (t2 - t0) / 1e9 / k;
      List<StepMetrics> out = new java.util.ArrayList<>();
      for (int j = 0; j < k; j++) {
        double loss = 0, norm = 0;
        int n = 0;
        for (AverageTask.Result r : results) n += r.examples()[j];
        for (AverageTask.Result r : results) {
          if (r.examples()[j] == 0) continue;
          loss += r.losses()[j] * r.examples()[j] / n;
          norm += r.gradNorms()[j] * r.examples()[j] / n;
        }
        Batch b = round.get(j);
        // The round's exchange is reported once, on its last step.
        out.add(new StepMetrics(first + j + 1, epoch + 1, n == 0 ? Double.NaN : loss, lrs[j], norm,
            b.size() / seconds, b.tokens() / seconds, (t2 - start) / 1_000_000, b.size(), b.tokens(),
            j == k - 1 ? x : null));
      }
      return out;
    }

    private void describe(int step, String what) {
      String s = "peft step " + (step + 1) + ": " + what;
      sc.setJobDescription(s);
      sc.setCallSite(s);
    }

    /** A step's exchange: the overhead is the job's wall time beyond its slowest task's compute. */
    private StepMetrics.Exchange exchange(long toBytes, long fromBytes, long jobMs, long updateMs,
                                          StepPayload<?> payload, TaskTiming.Job job) {
      return new StepMetrics.Exchange(toBytes, fromBytes, partitions, job.computeMs(),
          Math.max(0, jobMs - job.computeMs()), updateMs, payload.driverMs(), job.launchMs(), job.readMs(),
          job.resultMs());
    }

    private void account(StepMetrics.Exchange x) {
      bytesExchanged += x.bytesToExecutors() + x.bytesFromExecutors();
      overheadMs += x.sparkOverheadMs();
    }

    private static <T> List<T> sorted(List<T> results) {
      return results.stream().sorted(java.util.Comparator.comparingInt(SparkFitter::partitionOf)).toList();
    }

    TrainSummary.Distributed summary() {
      long perStep = stepsHere == 0 ? 0 : bytesExchanged / stepsHere;
      // Full-model averaging at the same cadence: every weight to and from every partition per exchange.
      int every = cfg.distributed().sync().equals("average") ? cfg.distributed().averageEvery() : 1;
      long fullModel = model.totalCount() * 4L * 2 * partitions / every;
      return new TrainSummary.Distributed(cfg.distributed().sync(), partitions, perStep, fullModel, overheadMs, resumedFrom);
    }
  }

  private static int partitionOf(Object r) {
    if (r instanceof GradientTask.Result g) return g.partition();
    if (r instanceof AverageTask.Result a) return a.partition();
    throw new IllegalArgumentException(String.valueOf(r));
  }
}
