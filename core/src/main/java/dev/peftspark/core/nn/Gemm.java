package dev.peftspark.core.nn;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.concurrent.atomic.LongAdder;

import static org.bytedeco.openblas.global.openblas_nolapack.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.cblas_dgemm;
import static org.bytedeco.openblas.global.openblas_nolapack.cblas_sgemm;

/**
 * {@code c = alpha·op(a)·op(b) + beta·c} straight to a BLAS (FLOAT: oneDNN's sgemm or OpenBLAS, see {@link Sgemm};
 * DOUBLE: OpenBLAS, the library ND4J itself calls), on row-major matrices that may sit anywhere inside an array with
 * any row stride. {@code Nd4j.gemm} goes through libnd4j's
 * {@code matmul} op: measured 50-200 µs of dispatch per call on this machine, which at attention's hundreds of
 * per-head products per step cost more than their arithmetic; here a call costs one JNI crossing. Strided
 * matrices also let attention read each head straight out of the projections, with no split/merge copies.
 */
public final class Gemm {
  /** Multiply-adds from which a product is split over {@link Parallel}'s threads (below, thread hand-off costs more). */
  static final long SPLIT_MIN = 1L << 22;

  /** Multiply-adds from which the {@link Split#BLAS} mode hands a product to OpenBLAS's own threads. */
  static final long BLAS_THREADS_MIN = 1L << 26;

  /**
   * How a product above {@link #SPLIT_MIN} uses the threads, from {@code -Dpeft.gemm.split=per-thread|blocks|blas}
   * (for A/B runs on a quiet machine). On the shared 2-core machine (load 6-13) per-thread beat blocks in every
   * back-to-back pair of the LLaMA bench on mean step and CPU per step (full: mean 3,740 / 4,145 against 5,491 /
   * 4,553 ms, CPU 2,466 / 2,756 against 2,624 / 2,916 ms), and per CPU-second on single products of the step's
   * shapes (57-85 against 46-80 GFLOP); blas was mixed. See BENCHMARKS.md, "Third pass".
   */
  enum Split {
    /** Two row (or column) blocks per thread, single-threaded OpenBLAS each: a slow thread's share is taken up by others. */
    BLOCKS,
    /** One block per thread (the default): the shared operand is packed once per thread instead of twice. */
    PER_THREAD,
    /** Products from {@link #BLAS_THREADS_MIN} go whole to OpenBLAS's own threads (one packing, shared); smaller ones as BLOCKS. */
    BLAS;

    static Split of(String name) { return choice(Split.class, "peft.gemm.split", name); }
  }

  static volatile Split split = Split.of(System.getProperty("peft.gemm.split", "per-thread"));

  /**
   * Arithmetic of FLOAT products, from {@code -Dpeft.gemm.precision=fp32|bf16}: fp32 (the default) is the
   * {@link Sgemm} library's; bf16 rounds both operands to bfloat16 and multiplies them with FP32 accumulation through
   * oneDNN ({@link Bf16Gemm}), for products from {@link #BF16_MIN} multiply-adds. DOUBLE products never change.
   */
  enum Precision {
    FP32, BF16;

    static Precision of(String name) { return choice(Precision.class, "peft.gemm.precision", name); }
  }

  static volatile Precision precision = Precision.of(System.getProperty("peft.gemm.precision", "fp32"));

  /** Multiply-adds from which a FLOAT product runs in bf16 when {@link #precision} asks for it. */
  static final long BF16_MIN = 1L << 20;

  /**
   * The library of single-threaded FP32 products, from {@code -Dpeft.gemm.sgemm=onednn|openblas}: oneDNN's
   * {@code dnnl_sgemm} (the default; 5-22% less time in products inside the LLaMA bench's step, in each of seven
   * same-jar pairs, see BENCHMARKS.md) or OpenBLAS's {@code cblas_sgemm}. Both accumulate in FP32; results differ
   * by rounding only. DOUBLE products and OpenBLAS-threaded ones ({@code peft.gemm.split=blas}) are OpenBLAS's
   * either way.
   */
  enum Sgemm {
    ONEDNN, OPENBLAS;

    static Sgemm of(String name) { return choice(Sgemm.class, "peft.gemm.sgemm", name); }
  }

  static volatile Sgemm sgemm = Sgemm.of(System.getProperty("peft.gemm.sgemm", "onednn"));

  // thread time inside single-threaded products and their multiply-adds, summed over threads (for benchmarks)
  private static final LongAdder PRODUCT_NANOS = new LongAdder(), PRODUCT_MACS = new LongAdder();

  private Gemm() {}

  /** A switch's constant as its property spells it: lower case, '-' for '_' (PER_THREAD is per-thread). */
  private static String nameOf(Enum<?> value) { return value.name().toLowerCase().replace('_', '-'); }

  /** The constant of {@code type} whose {@link #nameOf} is {@code name}; otherwise an error naming the property and the choices. */
  private static <E extends Enum<E>> E choice(Class<E> type, String property, String name) {
    E[] all = type.getEnumConstants();
    for (E e : all) if (nameOf(e).equals(name)) return e;
    StringBuilder choices = new StringBuilder();
    for (int i = 0; i < all.length; i++) choices.append(i == 0 ? "" : i == all.length - 1 ? " or " : ", ").append(nameOf(all[i]));
    throw new IllegalArgumentException(property + " must be " + choices + ", got '" + name + "'");
  }

  /** The {@code peft.gemm.split} mode in force (blocks, per-thread or blas), for benchmark records. */
  public static String splitMode() { return nameOf(split); }

  /** The {@code peft.gemm.precision} in force (fp32 or bf16), for benchmark records. */
  public static String precision() { return nameOf(precision); }

  /** Sets {@code peft.gemm.precision} for this process (fp32 or bf16; anything else is refused). */
  public static void setPrecision(String name) { precision = Precision.of(name); }

  /** The {@code peft.gemm.sgemm} in force (onednn or openblas), for benchmark records. */
  public static String sgemm() { return nameOf(sgemm); }

  /** Sets {@code peft.gemm.sgemm} for this process (onednn or openblas; anything else is refused). */
  public static void setSgemm(String name) { sgemm = Sgemm.of(name); }

  /** Thread nanoseconds spent in single-threaded products so far, summed over threads. */
  public static long productNanos() { return PRODUCT_NANOS.sum(); }

  /** Multiply-adds done by those products so far. */
  public static long productMacs() { return PRODUCT_MACS.sum(); }

  /**
   * A {@code rows × cols} row-major matrix inside {@code array} (c-ordered, contiguous, FLOAT or DOUBLE): element
   * {@code (i, j)} is the array's element {@code offset + i·ld + j} in c order.
   */
  public record Mat(INDArray array, long offset, int rows, int cols, int ld) {
    public Mat {
      if (array.ordering() != 'c' || array.elementWiseStride() != 1)
        throw new IllegalArgumentException("GEMM operands must be c-ordered and contiguous, got " + array.shapeInfoToString());
      if (rows < 0 || cols < 0 || ld < Math.max(1, cols) || offset < 0
          || (rows > 0 && offset + (long) (rows - 1) * ld + cols > array.length()))
        throw new IllegalArgumentException("a " + rows + "×" + cols + " matrix at " + offset + " with row stride " + ld
            + " does not fit an array of " + array.length());
    }

    /** The whole of a 2-D c-ordered array. */
    public static Mat of(INDArray a) {
      if (a.rank() != 2) throw new IllegalArgumentException("expected a matrix, got shape " + java.util.Arrays.toString(a.shape()));
      return new Mat(a, 0, (int) a.size(0), (int) a.size(1), (int) a.size(1));
    }
  }

  /** {@code c = alpha·op(a)·op(b) + beta·c}; all three of one data type (FLOAT or DOUBLE). */
  public static void gemm(Mat a, boolean transA, Mat b, boolean transB, Mat c, double alpha, double beta) {
    int m = transA ? a.cols : a.rows, k = transA ? a.rows : a.cols;
    int kb = transB ? b.cols : b.rows, n = transB ? b.rows : b.cols;
    if (k != kb || c.rows != m || c.cols != n)
      throw new IllegalArgumentException("GEMM shapes: op(a) " + m + "×" + k + ", op(b) " + kb + "×" + n + ", c " + c.rows + "×" + c.cols);
    DataType t = c.array.dataType();
    if (a.array.dataType() != t || b.array.dataType() != t)
      throw new IllegalArgumentException("GEMM data types differ: " + a.array.dataType() + ", " + b.array.dataType() + ", " + t);
    if (m == 0 || n == 0) return;
    long macs = (long) m * n * k;
    boolean bf16 = precision == Precision.BF16 && t == DataType.FLOAT && macs >= BF16_MIN;
    int threads = macs >= SPLIT_MIN ? Parallel.threads() : 1;
    Split mode = split;
    if (threads > 1 && mode == Split.BLAS && macs >= BLAS_THREADS_MIN && !bf16) {
      blas(a, transA, b, transB, c, m, n, k, alpha, beta);   // OpenBLAS's own threads
      return;
    }
    if (threads <= 1) {
      product(a, transA, b, transB, c, m, n, k, alpha, beta, bf16);
      return;
    }
    // row blocks of c (or column blocks when c is wide), one single-threaded product each
    boolean byRows = m >= n;
    int len = byRows ? m : n, pieces = Math.min((mode == Split.PER_THREAD ? 1 : 2) * threads, Math.max(1, len / 64)), step = (len + pieces - 1) / pieces;
    Parallel.forEach(pieces, p -> {
      int from = p * step, to = Math.min(len, from + step);
      if (from >= to) return;
      if (byRows) {
        Mat ap = transA ? new Mat(a.array, a.offset + from, a.rows, to - from, a.ld) : new Mat(a.array, a.offset + (long) from * a.ld, to - from, a.cols, a.ld);
        product(ap, transA, b, transB, new Mat(c.array, c.offset + (long) from * c.ld, to - from, c.cols, c.ld), to - from, n, k, alpha, beta, bf16);
      } else {
        Mat bp = transB ? new Mat(b.array, b.offset + (long) from * b.ld, to - from, b.cols, b.ld) : new Mat(b.array, b.offset + from, b.rows, to - from, b.ld);
        product(a, transA, bp, transB, new Mat(c.array, c.offset + from, c.rows, to - from, c.ld), m, to - from, k, alpha, beta, bf16);
      }
    });
  }

  private static void product(Mat a, boolean transA, Mat b, boolean transB, Mat c, int m, int n, int k, double alpha, double beta, boolean bf16) {
    long t0 = System.nanoTime();
    if (bf16) Bf16Gemm.gemm(a, transA, b, transB, c, m, n, k, alpha, beta);
    else if (sgemm == Sgemm.ONEDNN && k > 0 && c.array.dataType() == DataType.FLOAT) OneDnnSgemm.gemm(a, transA, b, transB, c, m, n, k, alpha, beta);
    else blas(a, transA, b, transB, c, m, n, k, alpha, beta);
    PRODUCT_NANOS.add(System.nanoTime() - t0);
    PRODUCT_MACS.add((long) m * n * k);
  }

  private static void blas(Mat a, boolean transA, Mat b, boolean transB, Mat c, int m, int n, int k, double alpha, double beta) {
    int ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    switch (c.array.dataType()) {
      case FLOAT -> cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, (float) alpha, floats(a), a.ld, floats(b), b.ld,
          (float) beta, floats(c), c.ld);
      case DOUBLE -> cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, doubles(a), a.ld, doubles(b), b.ld,
          beta, doubles(c), c.ld);
      default -> throw new IllegalArgumentException("GEMM supports FLOAT and DOUBLE, got " + c.array.dataType());
    }
  }

  /**
   * Drop-in for {@code Nd4j.gemm(a, b, c, transA, transB, alpha, beta)} on 2-D arrays: direct when all three are
   * c-ordered, contiguous FLOAT/DOUBLE of one type; ND4J's otherwise (views with odd strides, other types).
   */
  public static INDArray gemm(INDArray a, INDArray b, INDArray c, boolean transA, boolean transB, double alpha, double beta) {
    if (direct(a) && direct(b) && direct(c) && a.dataType() == c.dataType() && b.dataType() == c.dataType()) {
      gemm(Mat.of(a), transA, Mat.of(b), transB, Mat.of(c), alpha, beta);
      return c;
    }
    return Nd4j.gemm(a, b, c, transA, transB, alpha, beta);
  }

  /** A new {@code op(a)·op(b)} (uninitialised output, then written by the product). */
  public static INDArray mm(INDArray a, INDArray b, boolean transA, boolean transB) {
    long m = transA ? a.size(1) : a.size(0), n = transB ? b.size(0) : b.size(1);
    if (!(direct(a) && direct(b) && a.dataType() == b.dataType())) return Nd4j.gemm(a, b, transA, transB);
    INDArray c = Nd4j.createUninitialized(a.dataType(), new long[] {m, n}, 'c');
    gemm(Mat.of(a), transA, Mat.of(b), transB, Mat.of(c), 1.0, 0.0);
    return c;
  }

  /** A 2-D, c-ordered, densely packed FLOAT or DOUBLE array: rows of {@code size(1)} elements back to back. */
  static boolean direct(INDArray x) {
    DataType t = x.dataType();
    return x.rank() == 2 && x.ordering() == 'c' && x.elementWiseStride() == 1 && x.length() > 0
        && x.stride(1) == 1 && x.stride(0) == x.size(1) && (t == DataType.FLOAT || t == DataType.DOUBLE);
  }

  // addressPointer() is the array's first element: a view's buffer already starts at the view's offset()
  static FloatPointer floats(Mat x) {
    return new FloatPointer(x.array.data().addressPointer()).position(x.offset);
  }

  private static DoublePointer doubles(Mat x) {
    return new DoublePointer(x.array.data().addressPointer()).position(x.offset);
  }
}
