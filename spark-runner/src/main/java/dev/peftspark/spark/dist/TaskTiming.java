package dev.peftspark.spark.dist;

import java.io.Serializable;
import java.util.List;

/**
 * Where one task's time went, measured on the executor: when it started and finished (wall clock, to place it
 * within the driver's job), reading its inputs (step payload and cached partition) and computing.
 */
public record TaskTiming(long startedAtMs, long readMs, long computeMs, long finishedAtMs) implements Serializable {

  /** Starts the clock as a task begins. */
  static Clock start() { return new Clock(System.currentTimeMillis(), System.nanoTime()); }

  /** A running task's clock: {@link #read} once its inputs are in memory, {@link #done} when it returns. */
  static final class Clock {
    private final long startedAt, t0;
    private long t1;

    private Clock(long startedAt, long t0) {
      this.startedAt = startedAt;
      this.t0 = t0;
      this.t1 = t0;
    }

    void read() { t1 = System.nanoTime(); }

    long computeMs() { return (System.nanoTime() - t1) / 1_000_000; }

    TaskTiming done() {
      long now = System.nanoTime();
      return new TaskTiming(startedAt, (t1 - t0) / 1_000_000, (now - t1) / 1_000_000,
          startedAt + (now - t0) / 1_000_000);
    }
  }

  /**
   * A step's job seen from the driver: {@code submittedAtMs} when it submitted the job, {@code collectedAtMs}
   * when the results were in. launch = until the last task started (scheduling, task serialization and
   * shipping, deserialization); result = from the last task's end to the driver holding every result.
   * Clamped at 0: on a cluster, executor clocks may be a little off the driver's.
   */
  static Job job(List<TaskTiming> tasks, long submittedAtMs, long collectedAtMs) {
    long launch = 0, read = 0, compute = 0, lastEnd = submittedAtMs;
    for (TaskTiming t : tasks) {
      launch = Math.max(launch, t.startedAtMs() - submittedAtMs);
      read = Math.max(read, t.readMs());
      compute = Math.max(compute, t.computeMs());
      lastEnd = Math.max(lastEnd, t.finishedAtMs());
    }
    return new Job(Math.max(0, launch), read, compute, Math.max(0, collectedAtMs - lastEnd));
  }

  record Job(long launchMs, long readMs, long computeMs, long resultMs) {}
}
