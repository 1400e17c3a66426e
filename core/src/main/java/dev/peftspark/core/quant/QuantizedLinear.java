package dev.peftspark.core.quant;

import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

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

  public QuantizedLinear(String name, int out, int in, OffHeapNf4 weight, Param bias, DequantBuffer scratch) {
    if ((long) out * in != weight.size())
      throw new IllegalArgumentException(name + ": " + weight.size() + " quantized values do not make a " + out + "x" + in + " weight");
    this.name = name;
    this.out = out;
    this.in = in;
    this.weight = weight;
    this.bias = bias;
    this.scratch = scratch;
  }

  /** Quantizes {@code linear}'s weight (double quantization on) and keeps its bias. */
  public static QuantizedLinear of(Linear linear, DequantBuffer scratch) {
    INDArray w = linear.weight().value();
    boolean plain = w.dataType() == DataType.FLOAT && !w.isView() && w.ordering() == 'c' && w.length() == w.data().length();
    float[] values = plain ? w.data().asFloat() : w.castTo(DataType.FLOAT).dup('c').data().asFloat();
    Nf4Tensor q;
    try {
      q = Nf4.quantize(values);
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

  @Override
  public INDArray forward(INDArray x) {
    INDArray w = dequantizedWeight();
    if (bias == null) return Nd4j.gemm(x, w, false, true);
    // the same two GEMMs as Linear, so a quantized layer equals a Linear holding the dequantized weight bit for bit
    INDArray ones = Nd4j.ones(x.dataType(), x.size(0), 1);
    INDArray y = Nd4j.gemm(ones, bias.value().reshape(1, out), false, false);
    Nd4j.gemm(x, w, y, false, true, 1.0, 1.0);
    return y;
  }

  @Override
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    if (bias != null && bias.isTrainable()) bias.grad().addi(dy.sum(0));
    return needInputGrad ? Nd4j.gemm(dy, dequantizedWeight(), false, false) : null;
  }
}
