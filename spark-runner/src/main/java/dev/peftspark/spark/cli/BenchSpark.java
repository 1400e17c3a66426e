package dev.peftspark.spark.cli;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.train.StepMetrics;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.spark.dist.ExecutorSettings;
import dev.peftspark.spark.dist.SparkFitter;
import dev.peftspark.spark.job.ClassificationJob;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code runner: local} against {@code runner: spark} at the same global batch, back to back in one JVM (rounds
 * alternate which goes first, so neither always gets the warmer machine). Steady-state throughput skips the
 * first {@code --warmup} steps of each run (data layout, JIT), as does the CPU time per step. {@code --depth 1,2}
 * adds one Spark run per aggregation depth to each round. Prints one JSON line.
 */
@Command(name = "spark", mixinStandardHelpOptions = true,
    description = "Throughput of runner: spark (local[N]) vs runner: local on MiniLM LoRA, same global batch.")
final class BenchSpark implements Callable<Integer> {
  @Option(names = "--master", defaultValue = "local[2]") String master;
  @Option(names = "--partitions", defaultValue = "2") int partitions;
  @Option(names = "--steps", defaultValue = "20") int steps;
  @Option(names = "--warmup", defaultValue = "3", description = "Steps left out of the steady-state figure.")
  int warmup;
  @Option(names = "--batch", defaultValue = "32") int batch;
  @Option(names = "--rounds", defaultValue = "2", description = "Pairs of runs (default ${DEFAULT-VALUE}).") int rounds;
  @Option(names = "--data", defaultValue = "demo:sentiment/amazon.json") String data;
  @Option(names = "--depth", split = ",", defaultValue = "1", paramLabel = "D[,D...]",
      description = "distributed.aggregation_depth of the Spark runs; several (e.g. 1,2) run one Spark run per "
          + "depth each round, back to back (default ${DEFAULT-VALUE}).")
  List<Integer> depths = new ArrayList<>();
  @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Another config override. Repeatable.")
  List<String> sets = new ArrayList<>();

  /** One run's figures. */
  record Run(String runner, int depth, double examplesPerS, double steadyExamplesPerS, double cpuSeconds,
             double cpuMsPerStep, double computeMs, double overheadMs, double launchMs, double broadcastMs,
             double readMs, double resultMs, double updateMs) {}

  @Override
  public Integer call() throws Exception {
    Path tmp = Files.createTempDirectory("peft-bench-spark");
    SparkConf conf = new SparkConf().setMaster(master).setAppName("peft-spark bench spark")
        .set("spark.ui.enabled", "false").set("spark.driver.host", "127.0.0.1")
        .set("spark.driver.bindAddress", "127.0.0.1");
    List<Run> local = new ArrayList<>(), spark = new ArrayList<>();
    try (JavaSparkContext sc = new JavaSparkContext(ExecutorSettings.forward(conf))) {
      for (int r = 0; r < rounds; r++) {
        List<String> order = new ArrayList<>(List.of("local"));
        for (int d : depths) order.add("spark-" + d);
        if (r % 2 == 1) java.util.Collections.reverse(order);
        for (String runner : order) {
          int depth = runner.equals("local") ? 1 : Integer.parseInt(runner.substring(6));
          JobConfig cfg = config(runner.equals("local") ? "local" : "spark", depth, tmp.resolve(runner + "-" + r));
          Run run = run(cfg, runner.equals("local") ? null : sc);
          (runner.equals("local") ? local : spark).add(run);
        }
      }
    } finally {
      org.apache.hadoop.fs.FileUtil.fullyDelete(tmp.toFile());
    }
    double l = median(local.stream().mapToDouble(Run::steadyExamplesPerS).toArray());
    double s = median(spark.stream().filter(x -> x.depth() == depths.get(0)).mapToDouble(Run::steadyExamplesPerS)
        .toArray());
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("bench", "spark");
    out.put("master", master);
    out.put("partitions", partitions);
    out.put("batch", batch);
    out.put("steps", steps);
    out.put("local_examples_per_s", l);
    out.put("spark_examples_per_s", s);
    out.put("ratio", s / l);
    Map<String, Object> byDepth = new LinkedHashMap<>();
    for (int d : depths) {
      List<Run> at = spark.stream().filter(x -> x.depth() == d).toList();
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("examples_per_s", median(at.stream().mapToDouble(Run::steadyExamplesPerS).toArray()));
      m.put("spark_overhead_ms", median(at.stream().mapToDouble(Run::overheadMs).toArray()));
      m.put("result_ms", median(at.stream().mapToDouble(Run::resultMs).toArray()));
      m.put("cpu_ms_per_step", median(at.stream().mapToDouble(Run::cpuMsPerStep).toArray()));
      byDepth.put(String.valueOf(d), m);
    }
    out.put("spark_by_depth", byDepth);
    out.put("runs", interleave(local, spark));
    System.out.println(BenchCommand.JSON.writeValueAsString(out));
    return 0;
  }

  private JobConfig config(String runner, int depth, Path out) {
    List<String> all = new ArrayList<>(List.of("runner=" + runner, "output_dir=" + out, "data.train=[" + data + "]",
        "data.test=[]", "data.label_field=class", "data.max_length=64", "lora.r=8", "lora.alpha=16",
        "lora.target_modules=[query,value]", "train.batch_size=" + batch, "train.max_steps=" + steps,
        "train.lr=1e-3", "spark.partitions=" + partitions, "train.log_every=1000",
        "distributed.aggregation_depth=" + depth));
    all.addAll(sets);
    return JobConfigLoader.fromYaml("", "bench spark", all);
  }

  private Run run(JobConfig cfg, JavaSparkContext sc) throws Exception {
    List<StepMetrics> steps = new ArrayList<>();
    List<Long> cpuAtStep = new ArrayList<>();   // process CPU time when each step was recorded
    TrainListener record = new TrainListener() {
      @Override public void onStep(StepMetrics m) {
        steps.add(m);
        cpuAtStep.add(processCpuNanos());
      }
    };
    long cpu0 = processCpuNanos();
    var summary = sc == null ? ClassificationJob.train(cfg, record)
        : ClassificationJob.train(cfg, record, new SparkFitter(sc));
    double cpu = (processCpuNanos() - cpu0) / 1e9;
    int w = Math.min(warmup, steps.size() - 1);
    long examples = steps.subList(w + 1, steps.size()).stream().mapToLong(StepMetrics::examples).sum();
    double ms = steps.get(steps.size() - 1).elapsedMs() - steps.get(w).elapsedMs();
    var tail = steps.subList(w + 1, steps.size());
    // steady-state CPU per step (every thread of the process: driver, tasks, BLAS, Spark, GC), warmup left out
    double cpuPerStep = (cpuAtStep.get(steps.size() - 1) - cpuAtStep.get(w)) / 1e6 / tail.size();
    return new Run(cfg.runner(), cfg.distributed().aggregationDepth(), summary.examplesPerS(),
        examples / (ms / 1000), cpu, cpuPerStep, mean(tail, x -> x.computeMs()), mean(tail, x -> x.sparkOverheadMs()),
        mean(tail, x -> x.launchMs()),
        mean(tail, x -> x.broadcastMs()), mean(tail, x -> x.taskReadMs()), mean(tail, x -> x.resultMs()),
        mean(tail, x -> x.driverUpdateMs()));
  }

  private static double mean(List<StepMetrics> steps, java.util.function.ToLongFunction<StepMetrics.Exchange> f) {
    return steps.stream().filter(m -> m.exchange() != null).mapToLong(m -> f.applyAsLong(m.exchange()))
        .average().orElse(Double.NaN);
  }

  private static List<Run> interleave(List<Run> a, List<Run> b) {
    List<Run> out = new ArrayList<>();
    for (int i = 0; i < Math.max(a.size(), b.size()); i++) {
      if (i < a.size()) out.add(a.get(i));
      if (i < b.size()) out.add(b.get(i));
    }
    return out;
  }

  private static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    if (s.length == 0) return Double.NaN;
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  /** CPU time of the whole process (every thread: tasks, BLAS, Spark, GC). */
  private static long processCpuNanos() {
    var os = ManagementFactory.getOperatingSystemMXBean();
    return os instanceof com.sun.management.OperatingSystemMXBean sun ? sun.getProcessCpuTime() : -1;
  }
}
