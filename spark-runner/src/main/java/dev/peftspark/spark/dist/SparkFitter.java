package dev.peftspark.spark.dist;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.nn.Floats;
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
import org.apache.spark.api.java.JavaSparkContext;

import java.util.List;

/**
 * Data-parallel fitting on Spark. The driver owns the adapter and the optimizer; executors own the frozen base
 * (each loads it once per JVM) and the cached tokenized partitions. Per optimizer step ({@code sync: gradient})
 * only the adapter values go out (a {@link StepPayload}: in the task closure up to 1 MiB, else a broadcast
 * destroyed after the step) and only the adapter gradients come
 * back; they are summed with a fixed shape ({@link GradientSum}: on the driver in partition order, or a tree on the
 * executors with {@code distributed.aggregation_depth} ≥ 2) and applied exactly as the single-JVM trainer would. With
 * {@code sync: average}, partitions take {@code average_every} local steps between averages.
 */
public final class SparkFitter implements Fitter {
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
    return DriverLoop.onContext(given, cfg, (sc, partitions) -> {
      Run run = new Run(sc, model, train, cfg, partitions, listener);
      counters = run.counters;
      Trainer.Result r = run.fit();
      distributed = run.summary();
      return r;
    });
  }

  /** One fit: walks the epochs and their steps; {@link DriverLoop} does each step's driver work. */
  private static final class Run {
    private final JavaSparkContext sc;
    private final PeftClassifier model;
    private final JobConfig cfg;
    private final int partitions, microRows, stepsPerEpoch;
    private final Batcher batcher;
    private final ModelSpec spec;
    private final GradientUpdate update;
    private final ExampleStore store;
    private final boolean skipNonFinite;
    private final StepCounters counters;
    private final DriverLoop driver;

    Run(JavaSparkContext sc, PeftClassifier model, Tokenized train, JobConfig cfg, int partitions,
        TrainListener listener) {
      this.sc = sc;
      this.model = model;
      this.cfg = cfg;
      this.partitions = partitions;
      this.microRows = cfg.train().batchSize() / cfg.train().gradAccum();
      this.batcher = train.batcher(cfg.train().batchSize());
      this.stepsPerEpoch = batcher.numBatches();
      this.spec = ModelSpec.of(cfg.model(), model, cfg.train());
      this.update = new GradientUpdate(model.params().size(), model.decayMask(), cfg.train(), stepsPerEpoch);
      this.store = new ExampleStore(sc, train, partitions, cfg.spark().storageLevel());
      this.skipNonFinite = cfg.distributed().onNonFinite().equals("skip");
      this.counters = StepCounters.register(sc);
      this.driver = new DriverLoop(sc, cfg, model.params(), update, partitions, listener);
    }

    Trainer.Result fit() throws java.io.IOException {
      int total = update.totalSteps();
      int step = driver.begin(model.trainableCount(), model.totalCount());
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
              List<StepMetrics> done = average ? averageRound(data, round, step, epoch)
                  : List.of(gradientStep(data, round.get(0), step, epoch));
              driver.record(step, done);
              step += k;
            }
          }
        }
      } finally {
        store.close();
      }
      return driver.result(step, (step + stepsPerEpoch - 1) / stepsPerEpoch);
    }

    private StepMetrics gradientStep(ExampleStore.Epoch data, Batch batch, int step, int epoch) {
      var request = new GradientTask.Request(step, Floats.read(model.params().values()), batch.exampleIndex());
      return driver.gradientStep(step, epoch, request, request.bytes(), payload -> data.rdd().mapPartitionsWithIndex(
              new GradientTask(spec, payload, batch.size(), microRows, counters), true),
          -1, batch.size(), batch.tokens());
    }

    private List<StepMetrics> averageRound(ExampleStore.Epoch data, List<Batch> round, int first, int epoch) {
      long t0 = System.nanoTime();
      int k = round.size();
      var ps = model.params();
      int[][] members = new int[k][];
      double[] lrs = new double[k];
      for (int j = 0; j < k; j++) {
        members[j] = round.get(j).exampleIndex();
        lrs[j] = update.schedule().at(first + j);
      }
      var request = new AverageTask.Request(first, Floats.read(ps.values()),
          OptState.of(update.optimizer().state()), members, lrs);
      var payload = StepPayload.of(sc, request, request.bytes());
      List<AverageTask.Result> results;
      long submitted = System.currentTimeMillis(), collected;
      try (payload) {
        driver.describe(first, "local steps " + (first + 1) + "-" + (first + k) + " and parameter averaging");
        results = data.rdd().mapPartitionsWithIndex(
            new AverageTask(spec, payload, microRows, skipNonFinite, counters), true).collect().stream()
            .sorted(java.util.Comparator.comparingInt(AverageTask.Result::partition)).toList();
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
        Floats.write(avg, ps.values());
        update.optimizer().load(OptState.average(results.stream().map(AverageTask.Result::state).toList(), weights)
            .toNd4j());
      }
      long t2 = System.nanoTime();
      var x = driver.exchange(request.bytes() * partitions, fromBytes, (t1 - t0) / 1_000_000, (t2 - t1) / 1_000_000,
          payload, TaskTiming.job(results.stream().map(AverageTask.Result::timing).toList(), submitted, collected));
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
            b.size() / seconds, b.tokens() / seconds, driver.elapsedMs(t2), b.size(), b.tokens(),
            j == k - 1 ? x : null));
      }
      return out;
    }

    TrainSummary.Distributed summary() {
      int every = cfg.distributed().sync().equals("average") ? cfg.distributed().averageEvery() : 1;
      return driver.summary(model.totalCount(), every);
    }
  }
}
