package dev.peftspark.core.quant;

import dev.peftspark.core.nn.Gemm;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A frozen linear whose weight lives only in NF4, off the JVM heap ({@code y = x Ŵᵀ + b}, Ŵ the dequantized weight); the bias stays
 * full precision, as in bitsandbytes' Linear4bit. Forward and backward dequantize a block of rows at a time into a
 * shared {@link DequantBuffer} and multiply it straight from there with {@link Gemm} (direct OpenBLAS, writing into
 * the output's columns in place: no per-block temporaries).
 */
public final class QuantizedLinear implements LinearLayer {
  private final String name;
  private final int out, in;
  private final OffHeapNf4 weight;
  private final Param bias;             // [out] or null
  private final DequantBuffer scratch;
  private final long blockValues;

  public QuantizedLinear(String name, int out, int in, OffHeapNf4 weight, Param bias, DequantBuffer scratch) {
    this(name, out, in, weight, bias, scratch, BLOCK_VALUES);
  }

  /** @param blockValues weights dequantized at once by forward and backward (rounded to whole rows) */
  public QuantizedLinear(String name, int out, int in, OffHeapNf4 weight, Param bias, DequantBuffer scratch, long blockValues) {
    if (blockValues < 1) throw new IllegalArgumentException(name + ": blockValues must be >= 1, got " + blockValues);
    if ((long) out * in != weight.size())
      throw new IllegalArgumentException(name + ": " + weight.size() + " quantized values do not make a " + out + "x" + in + " weight");
    this.name = name;
    this.out = out;
    this.in = in;
    this.weight = weight;
    this.bias = bias;
    this.scratch = scratch;
    this.blockValues = blockValues;
  }

  /**
   * For a model being built from tensors read for it alone: quantizes each layer linear ({@link #of}) and frees its
   * float weight at once, so the float model never exists as a whole (QLoRA's load path and the bench's).
   */
  public static UnaryOperator<LinearLayer> consuming(DequantBuffer scratch) {
    return l -> {
      Linear plain = (Linear) l;
      QuantizedLinear q = of(plain, scratch);
      plain.weight().value().close();
      return q;
    };
  }

  /** Quantizes {@code linear}'s weight (double quantization on) and keeps its bias. */
  public static QuantizedLinear of(Linear linear, DequantBuffer scratch) {
    INDArray w = linear.weight().value();
    boolean plain = w.dataType() == DataType.FLOAT && !w.isView() && w.ordering() == 'c' && w.length() == w.data().length();
    INDArray f = plain ? w : w.castTo(DataType.FLOAT).dup('c');
    Nf4Tensor q;
    try {
      // read in place from native memory: no heap copy of the whole weight
      q = Nf4.quantize(f.data().asNioFloat(), (int) f.length(), true);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(linear.name() + ".weight: " + e.getMessage(), e);
    }
    return new QuantizedLinear(linear.name(), linear.outFeatures(), linear.inFeatures(), OffHeapNf4.of(q), linear.bias(), scratch);
  }

  @Override public String name() { return name; }
  @Override public int inFeatures() { return in; }
  @Override public int outFeatures() { return out; }
  @Override public LinearLayer base() { return this; }
  /** The NF4 codes (native memory). */
  public OffHeapNf4 packedWeight() { return weight; }
  public Param bias() { return bias; }

  /** Frozen: only the bias is a {@link Param}; the weight is {@link #packedWeight()}. */
  @Override public List<Param> params() { return bias == null ? List.of() : List.of(bias); }

  /** The dequantized weight [out, in] in the shared scratch buffer: valid until the next dequantization. */
  public INDArray dequantizedWeight() { return scratch.dequantize(weight, out, in); }

  /**
   * Weights dequantized at once by forward and backward: 1 Mi values (4 MiB in float; 512 rows of a 2,048-wide
   * weight, still a product of full speed): the shared scratch is sized by it, and it counts in a 4-bit model's
   * peak memory.
   */
  public static final long BLOCK_VALUES = 1L << 20;

  /** Rows of W per product: a block of {@code blockValues}, or all rows when a row does not start an NF4 block. */
  private int blockRows() {
    return in % Nf4.BLOCK != 0 ? out : (int) Math.max(1, Math.min(out, blockValues / in));
  }

  @Override
  public INDArray forward(INDArray x) {
    INDArray a = operand(x, "input");
    int n = (int) a.size(0), rows = blockRows();
    INDArray y;
    if (bias != null) {
      // y = 1·bᵀ first, then += x·Ŵᵀ: the same two products as Linear, so a quantized layer equals a Linear
      // holding the dequantized weight
      y = Gemm.mm(Nd4j.ones(a.dataType(), n, 1), operand(bias.value().reshape(1, out), "bias"), false, false);
    } else {
      y = Nd4j.createUninitialized(a.dataType(), new long[] {n, out}, 'c');
    }
    for (int r = 0; r < out; r += rows) {                                   // y[:, r..to) (+)= x · Ŵ[r..to)ᵀ
      int to = Math.min(out, r + rows);
      INDArray w = scratch.dequantizeRows(weight, r, to, in);
      Gemm.gemm(Gemm.Mat.of(a), false, Gemm.Mat.of(w), true, new Gemm.Mat(y, r, n, to - r, out), 1.0, bias == null ? 0.0 : 1.0);
    }
    return y;
  }

  @Override
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    if (bias != null && bias.isTrainable()) bias.grad().addi(dy.sum(0));
    if (!needInputGrad) return null;
    INDArray g = operand(dy, "output gradient");
    int n = (int) g.size(0), rows = blockRows();
    INDArray dx = Nd4j.createUninitialized(g.dataType(), new long[] {n, in}, 'c');
    for (int r = 0; r < out; r += rows) {                                   // dx (+)= dy[:, r..to) · Ŵ[r..to)
      int to = Math.min(out, r + rows);
      INDArray w = scratch.dequantizeRows(weight, r, to, in);
      Gemm.gemm(new Gemm.Mat(g, r, n, to - r, out), false, Gemm.Mat.of(w), false, Gemm.Mat.of(dx), 1.0, r == 0 ? 0.0 : 1.0);
    }
    return dx;
  }

  /** {@code x} as a whole c-ordered matrix of the scratch's type (a copy only when it is a strided view). */
  private INDArray operand(INDArray x, String what) {
    if (x.dataType() != scratch.dtype())
      throw new IllegalArgumentException(name + ": the " + what + " is " + x.dataType() + ", the layer computes in " + scratch.dtype());
    if (x.rank() != 2) throw new IllegalArgumentException(name + ": the " + what + " must be 2-D, got " + java.util.Arrays.toString(x.shape()));
    boolean whole = x.ordering() == 'c' && x.elementWiseStride() == 1 && x.stride(1) == 1 && x.stride(0) == x.size(1);
    return whole ? x : x.dup('c');
  }
}
