package dev.peftspark.core.quant;

import dev.peftspark.core.io.HalfFloats;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.List;

/**
 * A frozen, bias-free linear {@code y = x Wᵀ} whose weight {@code W [out, in]} is stored in 16 bits (BF16 or F16),
 * for a large embedding-sized matrix such as {@code lm_head} (or a tied embedding table): forward and backward
 * widen {@code W} to the input's type one block of rows at a time into a reused scratch, so at most
 * {@link #BLOCK_VALUES} full-precision weights exist at once. Not thread-safe (layers run on one thread).
 */
public final class HalfLinear implements LinearLayer {
  /** Weights widened at once: 4 Mi values (16 MiB in float). */
  public static final long BLOCK_VALUES = 1L << 22;

  private final String name;
  private final Param weight;   // [out, in], BFLOAT16 or HALF, frozen
  private final int blockRows;
  private final ShortBuffer bits;   // the weight's 16-bit codes in native memory, c order
  private INDArray scratch;         // one block widened, reused
  private final short[] codes = new short[1 << 14];   // staging of one chunk
  private final float[] wide = new float[1 << 14];

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
    long n = x.size(0), out = weight.shape[0];
    INDArray y = Nd4j.createUninitialized(x.dataType(), n, out);
    for (long r = 0; r < out; r += blockRows) {
      long to = Math.min(out, r + blockRows);
      INDArray w = block(r, to, x.dataType());
      try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {   // freed at once, even inside an arena
        INDArray part = Nd4j.gemm(x, w, false, true);                  // [n, to - r]
        y.get(NDArrayIndex.all(), NDArrayIndex.interval(r, to)).assign(part);
        part.close();
      }
    }
    return y;
  }

  @Override
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    if (!needInputGrad) return null;
    long out = weight.shape[0];
    INDArray dx = Nd4j.zeros(dy.dataType(), dy.size(0), weight.shape[1]);
    for (long r = 0; r < out; r += blockRows) {
      long to = Math.min(out, r + blockRows);
      INDArray w = block(r, to, dy.dataType());
      try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
        INDArray d = dy.get(NDArrayIndex.all(), NDArrayIndex.interval(r, to)).dup('c');
        Nd4j.gemm(d, w, dx, false, false, 1.0, 1.0);                  // dx += dy[:, r:to] · W[r:to]
        d.close();
      }
    }
    return dx;
  }

  /**
   * Rows {@code from..to} of W widened to {@code type} in this layer's reused scratch, decoded from the 16-bit
   * codes in Java (ND4J's cast of a row view leaves a hidden full-size copy for the garbage collector).
   */
  private INDArray block(long from, long to, DataType type) {
    int in = inFeatures(), rows = (int) (to - from), n = rows * in;
    if (scratch == null || scratch.dataType() != type || scratch.length() < n) {
      if (scratch != null) scratch.close();
      try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {   // lives as long as the layer
        scratch = Nd4j.create(type, (long) blockRows * in);
      }
    }
    int base = (int) (from * in);
    boolean bf16 = weight.value().dataType() == DataType.BFLOAT16;
    FloatBuffer floats = type == DataType.FLOAT ? scratch.data().asNioFloat() : null;
    DoubleBuffer doubles = floats == null ? scratch.data().asNioDouble() : null;
    for (int done = 0; done < n; ) {                       // bulk reads and writes a chunk at a time
      int k = Math.min(codes.length, n - done);
      bits.get(base + done, codes, 0, k);
      for (int i = 0; i < k; i++) wide[i] = bf16 ? HalfFloats.bf16ToFloat(codes[i]) : HalfFloats.f16ToFloat(codes[i]);
      if (floats != null) {
        floats.put(done, wide, 0, k);
      } else {
        for (int i = 0; i < k; i++) doubles.put(done + i, wide[i]);
      }
      done += k;
    }
    return Nd4j.create(scratch.data(), new long[] {rows, in}, new long[] {in, 1}, 0, 'c', type);
  }
}
