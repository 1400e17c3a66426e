package dev.peftspark.spark.dist;

import dev.peftspark.core.peft.PeftClassifier;

import java.io.IOException;
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

  /** A model for one task; give it back with {@link #release}. */
  public static PeftClassifier borrow(ModelSpec spec, long taskSeed) throws IOException {
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
