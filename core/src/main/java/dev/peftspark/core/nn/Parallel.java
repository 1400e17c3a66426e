package dev.peftspark.core.nn;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.openblas.presets.openblas_nolapack;
import org.nd4j.linalg.factory.Nd4j;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;
import java.util.function.IntFunction;

/**
 * Splits a step's kernels over as many threads as OpenBLAS is given ({@code --threads}, OPENBLAS_NUM_THREADS),
 * with OpenBLAS itself single-threaded meanwhile. Why: OpenBLAS's own threads synchronise on every call and then
 * spin-wait for ~0.1 s; attention makes hundreds of small products per step (measured ~40 GFLOP per CPU-second
 * with 2 OpenBLAS threads against ~60 with one), and the spinning thread took the core that the Java kernels
 * between products could use. Here each task runs a whole single-threaded product (or loop), and the extra
 * threads spin only briefly between regions ({@code -Dpeft.parallel.spin.us}, default 300 µs, as OpenMP's threads
 * do) and then park: GPT-2 at batch 1 forks and joins hundreds of times a step, and a thread that parked at once
 * gave its core away and waited for the scheduler at every fork (BENCHMARKS.md, "Spinning briefly at the forks").
 *
 * <p>Regions do not nest (a task runs nested regions inline) and are serialised process-wide, because the
 * OpenBLAS thread count they switch is global. Tasks must not allocate ND4J arrays (workspaces are per thread):
 * callers allocate outputs first and tasks write into them.
 */
public final class Parallel {
  private static final ThreadLocal<Boolean> INSIDE = ThreadLocal.withInitial(() -> false);
  private static final Object REGION = new Object();
  private static final List<ExecutorService> PINNED = new ArrayList<>();   // [k]: part k's thread (0 unused: the caller)

  /**
   * OpenBLAS's own {@code openblas_set_num_threads}, looked up once: the presets' {@code blas_set_num_threads}
   * (what {@code Nd4j.factory().blas().setMaxThreads} calls) searches the loaded libraries for it on every call,
   * which JFR showed costing more than the products it surrounded. It leaves the presets' cached count (what
   * {@code getMaxThreads} reports) alone, so the configured count stays readable inside a region.
   */
  private static final openblas_nolapack.SetNumThreads SET_THREADS = lookUpSetThreads();

  private Parallel() {}

  private static openblas_nolapack.SetNumThreads lookUpSetThreads() {
    Nd4j.factory().blas();   // ND4J has loaded OpenBLAS
    Pointer f = Loader.addressof("openblas_set_num_threads");
    if (f == null || f.isNull()) return null;
    // as the presets do it: a FunctionPointer of its own (the protected constructor allocates it) holding f
    return new openblas_nolapack.SetNumThreads() {}.put(f);
  }

  private static void setBlasThreads(int n) {
    if (SET_THREADS != null) SET_THREADS.call(n);
    else Nd4j.factory().blas().setMaxThreads(n);
  }

  /** Threads a region would use now: OpenBLAS's configured count, 1 inside a region. */
  public static int threads() {
    return INSIDE.get() ? 1 : Math.max(1, Nd4j.factory().blas().getMaxThreads());
  }

  /** Runs {@code body.accept(i)} for every {@code i < n}, each index once, over {@link #threads()} threads. */
  public static void forEach(int n, IntConsumer body) {
    int threads = Math.min(n, threads());
    if (threads <= 1) {
      for (int i = 0; i < n; i++) body.accept(i);
      return;
    }
    AtomicInteger next = new AtomicInteger();
    Runnable worker = inside(() -> {
      for (int i = next.getAndIncrement(); i < n; i = next.getAndIncrement()) body.accept(i);
    });
    region(threads, t -> spinner(t).submit(worker), worker);
  }

  /**
   * Runs {@code body.accept(k)} for every {@code k < n} at once: {@code k = 0} on the calling thread, each
   * {@code k ≥ 1} always on the same long-lived thread of its own, everything inside single-threaded as in
   * {@link #forEach}. For parts that keep per-thread state from call to call (a model replica whose activations
   * live in its thread's workspace: on a different thread each time, every thread would grow a workspace of its
   * own). Runs inline, one part after another, inside a region.
   */
  public static void forEachPinned(int n, IntConsumer body) {
    if (n <= 1 || INSIDE.get()) {
      for (int k = 0; k < n; k++) body.accept(k);
      return;
    }
    region(n, t -> pinned(t + 1).submit(inside(() -> body.accept(t + 1))), inside(() -> body.accept(0)));
  }

  /** How long a helper spins for its next task, and the caller for its helpers, before parking (0: park at once). */
  static final long SPIN_NS = Math.max(0, Long.getLong("peft.parallel.spin.us", 300)) * 1000;
  private static final List<Spinner> SPINNERS = new ArrayList<>();

  private static synchronized Spinner spinner(int k) {
    while (SPINNERS.size() <= k) SPINNERS.add(new Spinner(SPINNERS.size()));
    return SPINNERS.get(k);
  }

  /**
   * A helper thread that spins up to {@link #SPIN_NS} for its next task before parking, as OpenMP's threads do: on
   * a busy host a parked thread gives its core away and waits for the scheduler to hand one back.
   */
  private static final class Spinner extends Thread {
    private volatile FutureTask<?> task;

    Spinner(int k) {
      super("peft-kernels-" + k);
      setDaemon(true);
      start();
    }

    Future<?> submit(Runnable work) {
      FutureTask<Void> f = new FutureTask<>(work, null);
      task = f;
      LockSupport.unpark(this);
      return f;
    }

    @Override
    public void run() {
      while (true) {
        long until = System.nanoTime() + SPIN_NS;
        FutureTask<?> t;
        while ((t = task) == null) {
          if (System.nanoTime() < until) Thread.onSpinWait();
          else LockSupport.park(this);
        }
        task = null;   // before running: the region submits the next task only after this one is done
        t.run();
      }
    }
  }

  private static void awaitSpinning(Future<?> f) throws InterruptedException, ExecutionException {
    long until = System.nanoTime() + SPIN_NS;
    while (!f.isDone() && System.nanoTime() < until) Thread.onSpinWait();
    f.get();
  }

  private static synchronized ExecutorService pinned(int k) {
    while (PINNED.size() <= k) {
      String name = "peft-part-" + PINNED.size();
      PINNED.add(Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
      }));
    }
    return PINNED.get(k);
  }

  private static Runnable inside(Runnable work) {
    return () -> {
      INSIDE.set(true);
      try {
        work.run();
      } finally {
        INSIDE.set(false);
      }
    };
  }

  /** One region: OpenBLAS on one thread, {@code threads - 1} helpers started, {@code own} on this thread, all joined. */
  private static void region(int threads, IntFunction<Future<?>> startHelper, Runnable own) {
    synchronized (REGION) {
      int blasThreads = Nd4j.factory().blas().getMaxThreads();
      setBlasThreads(1);
      Future<?>[] helpers = new Future<?>[threads - 1];
      try {
        for (int t = 0; t < helpers.length; t++) helpers[t] = startHelper.apply(t);
        own.run();
        for (Future<?> f : helpers) awaitSpinning(f);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while waiting for kernel threads", e);
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof RuntimeException r) throw r;
        if (cause instanceof Error err) throw err;
        throw new IllegalStateException(cause);
      } finally {
        for (Future<?> f : helpers) if (f != null) waitQuietly(f);   // never leave a task writing after we return
        setBlasThreads(blasThreads);
      }
    }
  }

  /** A block of indices {@code [from, to)}. */
  @FunctionalInterface
  public interface Range {
    void run(int from, int to);
  }

  /**
   * Runs {@code body} over {@code [0, n)} cut into contiguous blocks (a few per thread, so that a descheduled
   * thread's share is taken up by the others); every index is in exactly one block.
   */
  public static void forRange(int n, Range body) {
    int threads = threads();
    int blocks = threads <= 1 ? 1 : Math.min(n, 4 * threads);
    if (blocks <= 1) {
      if (n > 0) body.run(0, n);
      return;
    }
    int step = (n + blocks - 1) / blocks;
    forEach(blocks, b -> {
      int from = b * step, to = Math.min(n, from + step);
      if (from < to) body.run(from, to);
    });
  }

  private static void waitQuietly(Future<?> f) {
    try {
      f.get();
    } catch (Exception ignored) {
      // its failure (if any) was already reported by the first get()
    }
  }
}
