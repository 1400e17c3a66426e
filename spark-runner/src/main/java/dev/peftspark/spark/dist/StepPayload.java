package dev.peftspark.spark.dist;

import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

import java.io.Serializable;

/**
 * What the driver sends the tasks of one step (adapter values, the batch). Up to {@link #INLINE_LIMIT} bytes it
 * rides inside the task closure: Spark already broadcasts every stage's serialized closure once per executor, so
 * a separate broadcast of the same bytes only added a second broadcast to create, fetch and destroy per step.
 * Larger payloads (big adapters, average mode's optimizer moments) get their own broadcast, destroyed by
 * {@link #close} as soon as the step's job has finished.
 */
final class StepPayload<T extends Serializable> implements Serializable, AutoCloseable {
  /** Spark warns about task closures above 1 MiB; below that the closure is the cheaper carrier. */
  static final long INLINE_LIMIT = 1L << 20;

  private final T inline;                 // null when broadcast
  private final Broadcast<T> broadcast;   // null when inline
  private transient long driverMs;

  private StepPayload(T inline, Broadcast<T> broadcast, long driverMs) {
    this.inline = inline;
    this.broadcast = broadcast;
    this.driverMs = driverMs;
  }

  /** @param bytes the payload's size, to choose the carrier */
  static <T extends Serializable> StepPayload<T> of(JavaSparkContext sc, T value, long bytes) {
    if (bytes <= INLINE_LIMIT) return new StepPayload<>(value, null, 0);
    long t0 = System.nanoTime();
    Broadcast<T> b = sc.broadcast(value);
    return new StepPayload<>(null, b, (System.nanoTime() - t0) / 1_000_000);
  }

  /** On an executor: the payload, from the closure or the broadcast. */
  T value() { return inline != null ? inline : broadcast.value(); }

  boolean broadcast() { return broadcast != null; }

  /** Driver time spent creating and destroying the broadcast (0 inline). */
  long driverMs() { return driverMs; }

  @Override
  public void close() {
    if (broadcast == null) return;
    long t0 = System.nanoTime();
    broadcast.destroy();
    driverMs += (System.nanoTime() - t0) / 1_000_000;
  }
}
