package dev.peftspark.spark.dist;

import dev.peftspark.core.peft.PeftClassifier;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Models kept per executor JVM and reused across steps, jobs and tasks. Several tasks run at once in one JVM
 * ({@code local[N]}, executors with several cores), each borrows its own model; all of them share the one
 * frozen base that {@link dev.peftspark.spark.job.BaseModel} caches per JVM, so an extra model costs only its
 * adapter and activations.
 */
public final class ExecutorModels {
  private static final Map<ModelSpec, Queue<PeftClassifier>> POOL = new ConcurrentHashMap<>();

  private ExecutorModels() {}

  private static volatile boolean threadsSet;
  private static final Pattern LOCAL = Pattern.compile("local\\[(\\d+|\\*)");

  /**
   * GEMM threads per task = cores / concurrent task slots of this executor. OpenBLAS's thread count is
   * process-wide: with {@code local[2]} two tasks each starting 2 spinning BLAS threads on 2 cores made every
   * GEMM wait for the other task's threads.
   */
  public static void limitBlasThreads() {
    if (threadsSet || SparkEnv.get() == null) return;
    synchronized (ExecutorModels.class) {
      if (threadsSet) return;
      SparkConf conf = SparkEnv.get().conf();
      int cpus = Runtime.getRuntime().availableProcessors();
      Matcher local = LOCAL.matcher(conf.get("spark.master", ""));
      int slots = local.lookingAt()
          ? (local.group(1).equals("*") ? cpus : Integer.parseInt(local.group(1)))
          : conf.getInt("spark.executor.cores", 1) / Math.max(1, conf.getInt("spark.task.cpus", 1));
      int threads = Math.max(1, cpus / Math.max(1, slots));
      previousThreads = Nd4j.factory().blas().getMaxThreads();
      Nd4j.factory().blas().setMaxThreads(threads);
      threadsSet = true;
    }
  }

  private static int previousThreads;

  /** Undoes {@link #limitBlasThreads} in this JVM (a local-mode driver goes on with its own work). */
  static synchronized void restoreBlasThreads() {
    if (!threadsSet) return;
    Nd4j.factory().blas().setMaxThreads(previousThreads);
    threadsSet = false;
  }

  /** A model for one task; give it back with {@link #release}. */
  public static PeftClassifier borrow(ModelSpec spec, long taskSeed) throws IOException {
    limitBlasThreads();
    if (spec.stochastic()) return spec.build(taskSeed);      // fresh dropout stream per (step, partition)
    PeftClassifier m = POOL.computeIfAbsent(spec, s -> new ConcurrentLinkedQueue<>()).poll();
    return m != null ? m : spec.build(spec.seed());
  }

  public static void release(ModelSpec spec, PeftClassifier m) {
    if (!spec.stochastic()) POOL.computeIfAbsent(spec, s -> new ConcurrentLinkedQueue<>()).add(m);
  }

  /** Seed for a task's dropout masks: same (seed, step, partition), same masks, on any executor, on retry. */
  public static long taskSeed(long seed, int step, int partition) {
    long z = seed * 0x9E3779B97F4A7C15L + step * 0xBF58476D1CE4E5B9L + partition * 0x94D049BB133111EBL;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    return z ^ (z >>> 27);
  }
}
