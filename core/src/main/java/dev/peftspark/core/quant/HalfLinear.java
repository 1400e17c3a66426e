package dev.peftspark.core.quant;

import dev.peftspark.core.io.HalfFloats;
import dev.peftspark.core.nn.Gemm;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Parallel;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.List;

/**
 * A frozen, bias-free linear {@code y = x Wᵀ} whose weight {@code W [out, in]} is stored in 16 bits (BF16 or F16),
 * for a large embedding-sized matrix such as {@code lm_head} (or a tied embedding table): forward and backward
 * widen {@code W} to the input's type one block of rows at a time into a reused scratch, so at most
 * {@link #BLOCK_VALUES} full-precision weights exist at once, and multiply them with {@link Gemm} straight into the
 * output's columns. Not thread-safe (layers run on one thread; the widening itself is spread over {@link Parallel}).
 */
public final class HalfLinear implements LinearLayer {
  /** Weights widened at once: 1 Mi values (a 4 MiB float scratch, allocated for a call and freed after it). */
  public static final long BLOCK_VALUES = 1L << 20;

  private final String name;
  private final Param weight;   // [out, in], BFLOAT16 or HALF, frozen
  private final int blockRows;
  private final ShortBuffer bits;   // the weight's 16-bit codes in native memory, c order
  private INDArray scratch;         // one block widened, reused within a call, freed after it

  public HalfLinear(String name, Param weight) { this(name, weight, (int) Math.max(1, BLOCK_VALUES / weight.shape[weight.shape.length - 1])); }

  /** @param blockRows rows of W widened at once */
  public HalfLinear(String name, Param weight, int blockRows) {
    if (blockRows < 1) throw new IllegalArgumentException(name + ": blockRows must be >= 1, got " + blockRows);
    if (weight.shape.length != 2) throw new IllegalArgumentException(name + ": weight must be 2-D, got " + weight);
    if (!isHalf(weight.value().dataType()))
      throw new IllegalArgumentException(name + ": a 16-bit linear needs a BFLOAT16 or HALF weight, got " + weight.value().dataType());
    if (weight.isTrainable()) throw new IllegalArgumentException(name + ": a 16-bit weight is frozen; " + weight + " is trainable");
    this.name = name;
    this.weight = weight;
    this.blockRows = (int) Math.min(weight.shape[0], blockRows);
    INDArray v = weight.value();
    if (v.isView() || v.ordering() != 'c' || v.length() != v.data().length())
      throw new IllegalArgumentException(name + ": a 16-bit weight must be a whole c-order array, got a view");
    this.bits = v.data().asNio().order(ByteOrder.nativeOrder()).asShortBuffer();
  }

  public static boolean isHalf(DataType t) { return t == DataType.BFLOAT16 || t == DataType.HALF; }

  @Override public String name() { return name; }
  @Override public int inFeatures() { return (int) weight.shape[1]; }
  @Override public int outFeatures() { return (int) weight.shape[0]; }
  @Override public LinearLayer base() { return this; }
  public Param weight() { return weight; }

  /** The stored (frozen) weight, counted as a base parameter. */
  @Override public List<Param> params() { return List.of(weight); }

  /** The whole weight widened to {@code type} (a new array: for merges, not for steps). */
  public INDArray widened(DataType type) { return weight.value().castTo(type); }

  @Override
  public INDArray forward(INDArray x) {
    INDArray a = operand(x, "input");
    int n = (int) a.size(0), out = outFeatures();
    INDArray y = Nd4j.createUninitialized(a.dataType(), new long[] {n, out}, 'c');
    for (int r = 0; r < out; r += blockRows) {                           // y[:, r..to) = x · W[r..to)ᵀ
      int to = Math.min(out, r + blockRows);
      INDArray w = block(r, to, a.dataType());
      Gemm.gemm(Gemm.Mat.of(a), false, Gemm.Mat.of(w), true, new Gemm.Mat(y, r, n, to - r, out), 1.0, 0.0);
    }
    releaseScratch();
    return y;
  }

  @Override
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    if (!needInputGrad) return null;
    INDArray g = operand(dy, "output gradient");
    int n = (int) g.size(0), out = outFeatures();
    INDArray dx = Nd4j.createUninitialized(g.dataType(), new long[] {n, inFeatures()}, 'c');
    for (int r = 0; r < out; r += blockRows) {                           // dx (+)= dy[:, r..to) · W[r..to)
      int to = Math.min(out, r + blockRows);
      INDArray w = block(r, to, g.dataType());
      Gemm.gemm(new Gemm.Mat(g, r, n, to - r, out), false, Gemm.Mat.of(w), false, Gemm.Mat.of(dx), 1.0, r == 0 ? 0.0 : 1.0);
    }
    releaseScratch();
    return dx;
  }

  /**
   * Frees the widened block when a call is done: the head runs between the layers' passes, and its scratch would
   * otherwise sit beside a layer's activations at the step's peak. Reallocating it per call costs next to nothing.
   */
  private void releaseScratch() {
    if (scratch != null) scratch.close();
    scratch = null;
  }

  /** {@code x} as a whole c-ordered FLOAT or DOUBLE matrix (a copy only when it is a strided view). */
  private INDArray operand(INDArray x, String what) {
    DataType t = x.dataType();
    if (t != DataType.FLOAT && t != DataType.DOUBLE)
      throw new IllegalArgumentException(name + ": the " + what + " must be FLOAT or DOUBLE, got " + t);
    if (x.rank() != 2) throw new IllegalArgumentException(name + ": the " + what + " must be 2-D, got " + java.util.Arrays.toString(x.shape()));
    boolean whole = x.ordering() == 'c' && x.elementWiseStride() == 1 && x.stride(1) == 1 && x.stride(0) == x.size(1);
    return whole ? x : x.dup('c');
  }

  /** One thread's staging of a chunk of codes and their widened values. */
  private static final class Staging {
    final short[] codes = new short[CHUNK];
    final float[] wide = new float[CHUNK];
  }

  private static final int CHUNK = 1 << 14;
  private static final ThreadLocal<Staging> STAGING = ThreadLocal.withInitial(Staging::new);

  /**
   * Rows {@code from..to} of W widened to {@code type} in this layer's reused scratch, decoded from the 16-bit
   * codes in Java (ND4J's cast of a row view leaves a hidden full-size copy for the garbage collector), a chunk at
   * a time on {@link Parallel}'s threads (bulk absolute reads and writes: the ranges are disjoint).
   */
  private INDArray block(long from, long to, DataType type) {
    int in = inFeatures(), rows = (int) (to - from), n = rows * in;
    if (scratch == null || scratch.dataType() != type || scratch.length() < n) {
      if (scratch != null) scratch.close();
      try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {   // outside any arena: closed after the call
        scratch = Nd4j.create(type, (long) blockRows * in);
      }
    }
    int base = (int) (from * in);
    boolean bf16 = weight.value().dataType() == DataType.BFLOAT16;
    FloatBuffer floats = type == DataType.FLOAT ? scratch.data().asNioFloat() : null;
    DoubleBuffer doubles = floats == null ? scratch.data().asNioDouble() : null;
    Parallel.forRange((n + CHUNK - 1) / CHUNK, (c0, c1) -> {
      Staging st = STAGING.get();
      short[] codes = st.codes;
      float[] wide = st.wide;
      for (int c = c0; c < c1; c++) {
        int done = c * CHUNK, k = Math.min(CHUNK, n - done);
        bits.get(base + done, codes, 0, k);
        if (bf16) {
          for (int i = 0; i < k; i++) wide[i] = HalfFloats.bf16ToFloat(codes[i]);
        } else {
          for (int i = 0; i < k; i++) wide[i] = HalfFloats.f16ToFloat(codes[i]);
        }
        if (floats != null) {
          floats.put(done, wide, 0, k);
        } else {
          for (int i = 0; i < k; i++) doubles.put(done + i, wide[i]);
        }
      }
    });
    return Nd4j.create(scratch.data(), new long[] {rows, in}, new long[] {in, 1}, 0, 'c', type);
  }
}
