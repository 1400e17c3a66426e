package dev.peftspark.core.peft.lora;

import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.quant.HalfLinear;
import dev.peftspark.core.quant.QuantizedLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The weight and bias of the base layers LoRA wraps: a full-precision {@link Linear} or an NF4 {@link QuantizedLinear}. */
final class BaseWeight {
  private BaseWeight() {}

  /** W [out, in]: the layer's own tensor, or the dequantized one in the shared scratch (read it, don't keep it). */
  static INDArray weight(LinearLayer base) {
    if (base instanceof Linear l) return l.weight().value();
    if (base instanceof QuantizedLinear q) return q.dequantizedWeight();
    if (base instanceof HalfLinear h) return h.widened(DataType.FLOAT);
    throw new IllegalArgumentException(base.name() + ": LoRA needs a linear or NF4 base, got " + base.getClass().getSimpleName());
  }

  /** b [out] or null. */
  static INDArray bias(LinearLayer base) {
    Param b = base instanceof Linear l ? l.bias() : base instanceof QuantizedLinear q ? q.bias() : null;
    return b == null ? null : b.value();
  }
}
