package dev.peftspark.spark.dist;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.nn.Floats;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.train.GradientUpdate;
import dev.peftspark.core.train.StepMetrics;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.core.train.Trainer;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * The driver's side of one Spark fit, shared by {@link SparkFitter} and {@link LmSparkFitter}: resuming from the
 * newest checkpoint, a {@code sync: gradient} step (run the partitions' job, sum their gradients with a fixed
 * shape, name a partition whose loss or gradient is not finite, clip and step as the local trainer does),
 * recording steps (metrics, listener, a checkpoint every {@code checkpoint.every_steps}) and the exchange totals.
 * The fitters keep what differs: how each epoch's rows reach the executors and what a task computes.
 */
final class DriverLoop {
  private static final Logger log = LoggerFactory.getLogger(DriverLoop.class);

  private final JavaSparkContext sc;
  private final JobConfig cfg;
  private final ParamSet ps;
  private final GradientUpdate update;
  private final TrainListener listener;
  private final int partitions;
  private final boolean skipNonFinite;
  private final Checkpoints checkpoints;   // null: checkpoint.every_steps is 0
  private final List<StepMetrics> history = new ArrayList<>();
  private long start, bytesExchanged, overheadMs, examples, tokens;
  private int resumedFrom, stepsHere;
  private double lastLoss = Double.NaN;

  /** A fit, given its context and partition count. */
  interface Fit<T> {
    T run(JavaSparkContext sc, int partitions) throws IOException;
  }

  /**
   * Runs {@code fit} on {@code given}, else on the context already running in this JVM (an application
   * embedding the job, a test suite; used, not stopped), else on one started from the config ({@code runner:
   * spark}: spark-submit's master and conf win over {@code spark.master}) and stopped afterwards.
   */
  static <T> T onContext(JavaSparkContext given, JobConfig cfg, Fit<T> fit) throws IOException {
    scala.Option<org.apache.spark.SparkContext> active = org.apache.spark.SparkContext$.MODULE$.getActive();
    boolean owned = given == null && active.isEmpty();
    JavaSparkContext sc = given != null ? given
        : active.isDefined() ? JavaSparkContext.fromSparkContext(active.get()) : start(cfg);
    try {
      return fit.run(sc, cfg.spark().partitions() > 0 ? cfg.spark().partitions() : sc.defaultParallelism());
    } finally {
      ExecutorModels.restoreBlasThreads();   // local mode: the driver JVM ran the tasks
      if (owned) sc.stop();
    }
  }

  private static JavaSparkContext start(JobConfig cfg) {
    SparkConf conf = new SparkConf().setAppName("peft-spark " + cfg.method() + " " + cfg.outputDir());
    if (!conf.contains("spark.master")) conf.setMaster(cfg.spark().master());
    return new JavaSparkContext(ExecutorSettings.forward(conf));
  }

  DriverLoop(JavaSparkContext sc, JobConfig cfg, ParamSet ps, GradientUpdate update, int partitions,
             TrainListener listener) {
    this.sc = sc;
    this.cfg = cfg;
    this.ps = ps;
    this.update = update;
    this.partitions = partitions;
    this.listener = listener;
    this.skipNonFinite = cfg.distributed().onNonFinite().equals("skip");
    this.checkpoints = cfg.checkpoint().everySteps() > 0
        ? new Checkpoints(cfg.outputDir(), sc.hadoopConfiguration()) : null;
  }

  /** Announces the run, starts its clock and continues from the newest checkpoint: the step to start at. */
  int begin(long trainable, long total) throws IOException {
    listener.onStart(update.totalSteps(), trainable, total);
    log.info("spark master {}: {} partitions, sync {}, aggregation depth {}, {} trainable parameters cross the "
        + "network per step", sc.master(), partitions, cfg.distributed().sync(),
        cfg.distributed().aggregationDepth(), trainable);
    start = System.nanoTime();
    if (checkpoints == null) return 0;
    var found = checkpoints.resume(ps, update.optimizer(), cfg.train().seed(), update.totalSteps());
    if (found.isEmpty()) return 0;
    for (StepMetrics m : found.get().history()) {
      history.add(m);
      listener.onStep(m);
    }
    return resumedFrom = found.get().step();
  }

  /**
   * One {@code sync: gradient} step.
   *
   * @param request      what the tasks need (adapter values, which rows); carried by a {@link StepPayload}
   * @param tasks        the step's job on that payload: one {@link GradientPart} per partition
   * @param targets      the global batch's target tokens, which the partitions' must add up to; -1: not counted
   * @throws Trainer.NonFiniteException naming step and partition (on_non_finite: stop); nothing is applied
   */
  <R extends Serializable> StepMetrics gradientStep(int step, int epoch, R request, long requestBytes,
                                                    Function<StepPayload<R>, JavaRDD<GradientPart>> tasks,
                                                    long targets, int batchExamples, int batchTokens) {
    long t0 = System.nanoTime();
    var payload = StepPayload.of(sc, request, requestBytes);
    GradientSum.Summed summed;
    long submitted = System.currentTimeMillis(), collected;
    try (payload) {
      describe(step, "adapter gradients");
      summed = GradientSum.of(tasks.apply(payload), cfg.distributed().aggregationDepth());
      collected = System.currentTimeMillis();
    }
    long t1 = System.nanoTime();
    double loss = 0;
    long counted = 0;
    String bad = null;
    for (GradientPart p : summed.parts()) {   // partition order: the loss sums the same way at every depth
      loss += p.loss();
      counted += p.targets();
      if (bad == null && p.nonFinite() != null) bad = "partition " + p.partition() + ": " + p.nonFinite();
    }
    if (targets >= 0 && counted != targets) {
      throw new IllegalStateException("step " + (step + 1) + ": the partitions saw " + counted
          + " target tokens, the global batch has " + targets);
    }
    double norm = Double.NaN;
    if (bad != null) {
      String msg = "step " + (step + 1) + " (" + bad + "); the step was not applied";
      if (!skipNonFinite) throw new Trainer.NonFiniteException(msg + " and nothing was saved (try a lower train.lr)");
      log.warn("{}; skipped (distributed.on_non_finite: skip)", msg);
    } else {
      // the driver's own gradient buffer holds the sum: no new native array per step
      Floats.write(summed.grads() != null ? summed.grads() : new float[(int) ps.grads().length()], ps.grads());
      norm = update.apply(ps.values(), ps.grads(), loss, step, "");
    }
    long t2 = System.nanoTime();
    var x = exchange(requestBytes * partitions, summed.bytesToDriver(), (t1 - t0) / 1_000_000,
        (t2 - t1) / 1_000_000, payload,
        TaskTiming.job(summed.parts().stream().map(GradientPart::timing).toList(), submitted, collected));
    double seconds = (t2 - t0) / 1e9;
    return new StepMetrics(step + 1, epoch + 1, loss, update.schedule().at(step), norm, batchExamples / seconds,
        batchTokens / seconds, elapsedMs(t2), batchExamples, batchTokens, x);
  }

  /**
   * Records the steps {@code before + 1 .. before + done.size()}: metrics, listener, totals, and the checkpoint
   * when they pass a multiple of {@code checkpoint.every_steps}.
   */
  void record(int before, List<StepMetrics> done) throws IOException {
    for (StepMetrics m : done) {
      history.add(m);
      listener.onStep(m);
      examples += m.examples();
      tokens += m.tokens();
      lastLoss = m.loss();
    }
    int after = before + done.size();
    stepsHere += done.size();
    if (checkpoints != null && Checkpoints.due(before, after, cfg.checkpoint().everySteps())) {
      checkpoints.write(after, cfg.train().seed(), ps, update.optimizer(), history);
    }
  }

  /** Names the step's job and stages in the Spark UI. */
  void describe(int step, String what) {
    String s = "peft step " + (step + 1) + ": " + what;
    sc.setJobDescription(s);
    sc.setCallSite(s);
  }

  /** A step's exchange, added to the totals: the overhead is the job's wall time beyond its slowest task. */
  StepMetrics.Exchange exchange(long toBytes, long fromBytes, long jobMs, long updateMs, StepPayload<?> payload,
                                TaskTiming.Job job) {
    var x = new StepMetrics.Exchange(toBytes, fromBytes, partitions, job.computeMs(),
        Math.max(0, jobMs - job.computeMs()), updateMs, payload.driverMs(), job.launchMs(), job.readMs(),
        job.resultMs());
    bytesExchanged += x.bytesToExecutors() + x.bytesFromExecutors();
    overheadMs += x.sparkOverheadMs();
    return x;
  }

  long elapsedMs(long nanoTime) { return (nanoTime - start) / 1_000_000; }

  /** The fit's result after {@code steps} steps over {@code epochs} epochs. */
  Trainer.Result result(int steps, int epochs) {
    return new Trainer.Result(steps, epochs, lastLoss, elapsedMs(System.nanoTime()), examples, tokens);
  }

  /**
   * Bytes per step against full-model averaging at the same cadence (every weight to and from every partition
   * per exchange, every {@code every} steps).
   */
  TrainSummary.Distributed summary(long totalParams, int every) {
    long perStep = stepsHere == 0 ? 0 : bytesExchanged / stepsHere;
    long fullModel = totalParams * 4L * 2 * partitions / every;
    return new TrainSummary.Distributed(cfg.distributed().sync(), partitions, perStep, fullModel, overheadMs,
        resumedFrom);
  }
}
