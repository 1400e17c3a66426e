package dev.peftspark.core.train;

import dev.peftspark.core.nn.Parallel;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.function.IntToDoubleFunction;

import static org.bytedeco.openblas.global.openblas_nolapack.cblas_daxpy;
import static org.bytedeco.openblas.global.openblas_nolapack.cblas_saxpy;

/**
 * How a step uses its threads ({@code -Dpeft.step.split=rows|ops}). {@code rows} (the default): a micro-batch of at
 * least as many rows as threads is cut into one contiguous part per thread, each part runs forward and backward on
 * its own model replica with everything inside single-threaded, and the replicas' gradients are summed at the end.
 * Why: every product and fused kernel of the {@code ops} path (also what runs when there are fewer rows than
 * threads) forks and joins its threads; the parts here join once per micro-batch. Measured: same CPU per step,
 * ~10% less wall time at low load (BENCHMARKS.md, "Fourth pass: micro-batches per thread"); the per-product
 * efficiency loss that motivated it did not show.
 */
public final class RowSplit {
  /** The two ways a step uses its threads. */
  enum Mode { ROWS, OPS }

  static volatile Mode mode = parse(System.getProperty("peft.step.split", "rows"));

  private RowSplit() {}

  static Mode parse(String name) {
    return switch (name) {
      case "rows" -> Mode.ROWS;
      case "ops" -> Mode.OPS;
      default -> throw new IllegalArgumentException("peft.step.split must be rows or ops, got '" + name + "'");
    };
  }

  /** The {@code peft.step.split} mode in force (rows or ops), for benchmark records. */
  public static String mode() { return mode.name().toLowerCase(); }

  /** Parts a micro-batch of {@code rows} rows is cut into: one per thread in rows mode with rows ≥ threads, else 1. */
  public static int parts(int rows) {
    int threads = Parallel.threads();
    return mode == Mode.ROWS && threads > 1 && rows >= threads ? threads : 1;
  }

  /** First row of part {@code k} of {@code parts} over {@code rows} rows (contiguous, sizes differ by at most one). */
  public static int start(int k, int parts, int rows) { return (int) ((long) k * rows / parts); }

  /**
   * Runs {@code part.applyAsDouble(k)} for {@code k < parts}, one per thread, each single-threaded inside (nested
   * {@link Parallel} regions run inline, OpenBLAS on one thread); returns their sum in part order. A part may
   * allocate ND4J arrays in a workspace of its own thread.
   */
  public static double sum(int parts, IntToDoubleFunction part) {
    double[] results = new double[parts];
    Parallel.forEachPinned(parts, k -> results[k] = part.applyAsDouble(k));   // replica k on the same thread each step
    double total = 0;
    for (double r : results) total += r;
    return total;
  }

  /** {@code into += Σ from} element-wise over flat buffers of one length and type (FLOAT or DOUBLE), parallel over the range. */
  public static void addInto(INDArray into, List<INDArray> from) {
    long n = into.length();
    DataType t = into.dataType();
    for (INDArray f : from) {
      if (f.length() != n || f.dataType() != t || !flat(f))
        throw new IllegalArgumentException("gradient buffers differ: " + f.shapeInfoToString() + " into " + into.shapeInfoToString());
    }
    if (!flat(into) || (t != DataType.FLOAT && t != DataType.DOUBLE))
      throw new IllegalArgumentException("expected a flat FLOAT or DOUBLE buffer, got " + into.shapeInfoToString());
    int blocks = (int) Math.max(1, Math.min(64, n / (1 << 16)));
    Parallel.forEach(blocks, b -> {
      long lo = n * b / blocks, hi = n * (b + 1) / blocks;
      for (INDArray f : from) axpy(f, into, lo, (int) (hi - lo));
    });
  }

  private static boolean flat(INDArray a) { return a.ordering() == 'c' && a.elementWiseStride() == 1; }

  private static void axpy(INDArray x, INDArray y, long offset, int len) {
    if (len == 0) return;
    if (y.dataType() == DataType.FLOAT) {
      cblas_saxpy(len, 1f, new FloatPointer(x.data().addressPointer()).position(offset), 1,
          new FloatPointer(y.data().addressPointer()).position(offset), 1);
    } else {
      cblas_daxpy(len, 1.0, new DoublePointer(x.data().addressPointer()).position(offset), 1,
          new DoublePointer(y.data().addressPointer()).position(offset), 1);
    }
  }
}
