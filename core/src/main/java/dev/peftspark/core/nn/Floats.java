package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * Bulk copies between FLOAT arrays and Java {@code float[]} through NIO views of the native memory, for kernels
 * written as plain Java loops. (ND4J's {@code asFloat()} and {@code createFromArray} copy element by element:
 * measured 3-6 ms for 3 MB, against 0.3 ms here.)
 */
public final class Floats {
  private Floats() {}

  /** The values of {@code a} in c order. */
  public static float[] read(INDArray a) {
    INDArray c = a.isView() || a.ordering() != 'c' ? a.dup('c') : a;
    float[] out = new float[(int) c.length()];
    FloatBuffer buf = c.data().asNioFloat();
    buf.position((int) c.offset());
    buf.get(out);
    return out;
  }

  /**
   * Overwrites {@code target} (a FLOAT array laid out contiguously in c order, e.g. a flat parameter buffer) with
   * {@code values}, in place: no new native array per call.
   */
  public static void write(float[] values, INDArray target) {
    if (target.dataType() != DataType.FLOAT || target.ordering() != 'c' || target.length() != values.length
        || (target.isView() && target.elementWiseStride() != 1)) {
      throw new IllegalArgumentException("expected a contiguous FLOAT array of " + values.length + " elements, got "
          + target.dataType() + " " + java.util.Arrays.toString(target.shape()) + " order " + target.ordering());
    }
    FloatBuffer buf = target.data().asNioFloat();
    buf.position((int) target.offset());
    buf.put(values);
  }

  /** A new FLOAT array of {@code shape} holding {@code values} (c order). */
  public static INDArray write(float[] values, long... shape) {
    INDArray out = Nd4j.createUninitialized(DataType.FLOAT, shape, 'c');
    FloatBuffer buf = out.data().asNioFloat();
    buf.position((int) out.offset());
    buf.put(values);
    return out;
  }

  /**
   * {@code e^x} in single precision, within 1 ulp of {@code Math.exp} (FloatsTest sweeps the range), at a fraction
   * of its cost: the fused softmax, cross-entropy and SwiGLU loops take ~17 M exponentials a step at the issue's
   * LLaMA shape. Cephes' {@code expf}: {@code x = n·ln2 + r}, a degree-6 polynomial for {@code e^r}, times {@code 2^n}.
   */
  public static float exp(float x) {
    if (x < -87.33654f) return 0f;                        // below the smallest normal float
    if (x > 88f) return (float) Math.exp(x);              // 2^n would overflow the exponent bits: rare, exact path
    float n = (float) Math.floor(x * LOG2E + 0.5f);
    float r = x - n * LN2_HI + n * LN2_LO;                // ln2 split in two for an exact n·ln2_hi
    return polynomial(r) * Float.intBitsToFloat(((int) n + 127) << 23);
  }

  // Cephes expf's constants, shared by the scalar exp, the bulk one and its Vector API twin (VectorExp)
  static final float LOG2E = 1.44269504088896341f;
  static final float LN2_HI = 0.693359375f, LN2_LO = 2.12194440e-4f;   // LN2_HI − LN2_LO = ln 2, LN2_HI exact in few bits
  static final float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f, P3 = 4.1665795894e-2f,
      P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;
  /** 1.5·2^23: {@code x + ROUNDER} keeps round(x) in the low mantissa bits (bits 0x4B400000 + round(x)). */
  static final float ROUNDER = 12582912f;
  /** The bits of {@code ROUNDER + n} minus this, shifted left 23, are those of 2^n (0x4B400000 − 127). */
  static final int ROUNDER_BITS_LESS_BIAS = 0x4B3FFF81;

  /** {@code e^r} for {@code |r| ≤ ln2 / 2}: Cephes' degree-6 polynomial. */
  private static float polynomial(float r) {
    return (((((P0 * r + P1) * r + P2) * r + P3) * r + P4) * r + P5) * r * r + r + 1f;
  }

  /** Σ v[from..to) in double, as eight interleaved sums (one running sum would wait on each addition's latency). */
  public static double sum(float[] v, int from, int to) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int j = from;
    for (; j + 7 < to; j += 8) {
      s0 += v[j];
      s1 += v[j + 1];
      s2 += v[j + 2];
      s3 += v[j + 3];
      s4 += v[j + 4];
      s5 += v[j + 5];
      s6 += v[j + 6];
      s7 += v[j + 7];
    }
    for (; j < to; j++) s0 += v[j];
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
  }

  /** Σ a∘b over {@code [0, n)} in double (each product rounded to float first), as eight interleaved sums. */
  public static double dot(float[] a, float[] b, int n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int j = 0;
    for (; j + 7 < n; j += 8) {
      s0 += a[j] * b[j];
      s1 += a[j + 1] * b[j + 1];
      s2 += a[j + 2] * b[j + 2];
      s3 += a[j + 3] * b[j + 3];
      s4 += a[j + 4] * b[j + 4];
      s5 += a[j + 5] * b[j + 5];
      s6 += a[j + 6] * b[j + 6];
      s7 += a[j + 7] * b[j + 7];
    }
    for (; j < n; j++) s0 += a[j] * b[j];
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
  }

  /**
   * {@link #expByPolynomial}'s argument range: the lower end gives n = −127, whose 2^n bits are those of 0 (so
   * e^x is 0 from about −87.68 down), the upper end n = 128, whose bits are those of +∞ (so e^x is +∞ from about
   * 88.38 up; {@code Math.exp} overflows from 88.72).
   */
  static final float EXP_LOW = -88f, EXP_HIGH = 89f;

  /**
   * Whether {@link #exp(float[], int, int)} runs on the Vector API ({@link VectorExp}): when the JVM resolved
   * {@code jdk.incubator.vector} and {@code -Dpeft.exp} is not {@code polynomial}; otherwise {@link #expByPolynomial}.
   */
  static final boolean VECTOR_EXP = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
      && !"polynomial".equals(System.getProperty("peft.exp"));

  /** "vector" or "polynomial": which bulk exp runs (for benchmark records). */
  public static String expKind() { return VECTOR_EXP ? "vector" : "polynomial"; }

  /**
   * {@code v[i] = e^v[i]} for {@code from <= i < to} as {@link #expByPolynomial} computes it (within 1 ulp of
   * {@code Math.exp} over normal results, 0 for masked scores, NaN for NaN): on the Vector API's lanes
   * ({@link VectorExp}, the same bits) where the JVM has it, else through the per-thread blocks below.
   */
  public static void exp(float[] v, int from, int to) {
    if (from < 0 || to > v.length || from > to)
      throw new IndexOutOfBoundsException("range [" + from + ", " + to + ") of " + v.length + " values");
    if (VECTOR_EXP) VectorExp.exp(v, from, to);
    else expByPolynomial(v, from, to);
  }

  /**
   * {@link #exp(float[], int, int)} without the Vector API: the same Cephes polynomial as {@link #exp(float)},
   * within 1 ulp of {@code Math.exp} from the smallest normal result (x ≈ −87.34) to 88.37, 0 below about −87.68
   * (subnormal results in between), +∞ from 88.38 and NaN for NaN. Several times faster per element than the scalar call: the
   * work runs as short branch-free loops over per-thread blocks, which C2 vectorises, and the one step it does not
   * vectorise (float bits to int and back, for 2^n) is a bulk copy through a direct buffer seen as floats and as
   * ints. Each block is copied in first so that every loop indexes all its arrays alike (with differing index
   * expressions C2 cannot rule out aliasing and leaves the loop scalar).
   */
  static void expByPolynomial(float[] v, int from, int to) {
    ExpScratch s = EXP_SCRATCH.get();
    for (int at = from; at < to; at += EXP_BLOCK) {
      int k = Math.min(EXP_BLOCK, to - at);
      System.arraycopy(v, at, s.x, 0, k);
      expPolynomial(s.x, s.p, s.t, k);
      s.floats.put(0, s.t, 0, k);       // t's bits hold n + 1.5·2^23 in their low mantissa bits
      s.ints.get(0, s.bits, 0, k);
      exponentBits(s.bits, k);
      s.ints.put(0, s.bits, 0, k);
      s.floats.get(0, s.t, 0, k);       // now 2^n
      multiply(s.p, s.t, s.x, k);
      System.arraycopy(s.x, 0, v, at, k);
    }
  }

  /** p = e^r and t = n + 1.5·2^23 (n = round(x/ln2) by the magic-number trick) for x = n·ln2 + r, x clamped. */
  private static void expPolynomial(float[] x, float[] p, float[] t, int k) {
    for (int i = 0; i < k; i++) {
      float c = Math.max(EXP_LOW, Math.min(x[i], EXP_HIGH));
      float ti = c * LOG2E + ROUNDER;
      float n = ti - ROUNDER;
      float r = c - n * LN2_HI + n * LN2_LO;
      p[i] = polynomial(r);
      t[i] = ti;
    }
  }

  /** The bits of 1.5·2^23 + n (0x4B400000 + n) become those of 2^n ((n + 127) << 23; 0 at n = −127, +∞ at 128). */
  private static void exponentBits(int[] bits, int k) {
    for (int i = 0; i < k; i++) bits[i] = (bits[i] - ROUNDER_BITS_LESS_BIAS) << 23;
  }

  private static void multiply(float[] a, float[] b, float[] out, int k) {
    for (int i = 0; i < k; i++) out[i] = a[i] * b[i];
  }

  private static final int EXP_BLOCK = 2048;
  private static final ThreadLocal<ExpScratch> EXP_SCRATCH = ThreadLocal.withInitial(ExpScratch::new);

  /** One thread's blocks; {@code floats} and {@code ints} view the same direct memory. */
  private static final class ExpScratch {
    final float[] x = new float[EXP_BLOCK], p = new float[EXP_BLOCK], t = new float[EXP_BLOCK];
    final int[] bits = new int[EXP_BLOCK];
    final ByteBuffer raw = ByteBuffer.allocateDirect(4 * EXP_BLOCK).order(ByteOrder.nativeOrder());
    final FloatBuffer floats = raw.asFloatBuffer();
    final IntBuffer ints = raw.asIntBuffer();
  }
}
