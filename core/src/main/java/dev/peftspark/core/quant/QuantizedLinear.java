package dev.peftspark.core.quant;

import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.List;

/**
 * A frozen linear whose weight lives only in NF4, off the JVM heap ({@code y = x Ŵᵀ + b}, Ŵ the dequantized weight); the bias stays
 * full precision, as in bitsandbytes' Linear4bit. Forward and backward dequantize into a shared {@link DequantBuffer}.
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

  /** Weights dequantized at once by forward and backward: 2 Mi values (8 MiB in float). */
  public static final long BLOCK_VALUES = 1L << 21;

  /** Rows of W per product: a block of {@code blockValues}, or all rows when a row does not start an NF4 block. */
  private int blockRows() {
    return in % Nf4.BLOCK != 0 ? out : (int) Math.max(1, Math.min(out, blockValues / in));
  }

  @Override
  public INDArray forward(INDArray x) {
    int rows = blockRows();
    if (rows < out) return forwardInBlocks(x, rows);
    INDArray w = dequantizedWeight();
    if (bias == null) return Nd4j.gemm(x, w, false, true);
    // the same two GEMMs as Linear, so a quantized layer equals a Linear holding the dequantized weight bit for bit
    INDArray ones = Nd4j.ones(x.dataType(), x.size(0), 1);
    INDArray y = Nd4j.gemm(ones, bias.value().reshape(1, out), false, false);
    Nd4j.gemm(x, w, y, false, true, 1.0, 1.0);
    return y;
  }

  /** {@code y[:, r..r+rows) = x · W[r..r+rows)ᵀ (+ b)}, one block of W dequantized at a time (a small scratch buffer). */
  private INDArray forwardInBlocks(INDArray x, int rows) {
    INDArray y = bias == null ? Nd4j.createUninitialized(x.dataType(), x.size(0), out)
        : Nd4j.gemm(Nd4j.ones(x.dataType(), x.size(0), 1), bias.value().reshape(1, out), false, false);
    for (int r = 0; r < out; r += rows) {
      int to = Math.min(out, r + rows);
      INDArray w = scratch.dequantizeRows(weight, r, to, in);
      INDArray target = y.get(NDArrayIndex.all(), NDArrayIndex.interval(r, to));
      try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {   // freed at once, even inside an arena
        INDArray part = Nd4j.gemm(x, w, false, true);
        if (bias == null) target.assign(part); else target.addi(part);
        part.close();
      }
    }
    return y;
  }

  @Override
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    if (bias != null && bias.isTrainable()) bias.grad().addi(dy.sum(0));
    if (!needInputGrad) return null;
    int rows = blockRows();
    if (rows >= out) return Nd4j.gemm(dy, dequantizedWeight(), false, false);
    INDArray dx = Nd4j.zeros(dy.dataType(), dy.size(0), in);
    for (int r = 0; r < out; r += rows) {                                   // dx += dy[:, r..to) · W[r..to)
      int to = Math.min(out, r + rows);
      INDArray w = scratch.dequantizeRows(weight, r, to, in);
      try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {   // freed at once, even inside an arena
        INDArray d = dy.get(NDArrayIndex.all(), NDArrayIndex.interval(r, to)).dup('c');
        Nd4j.gemm(d, w, dx, false, false, 1.0, 1.0);
        d.close();
      }
    }
    return dx;
  }
}
