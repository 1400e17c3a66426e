package dev.peftspark.core.peft.qlora;

import dev.peftspark.core.nn.LinearModules;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.quant.DequantBuffer;
import dev.peftspark.core.quant.QuantizedLinear;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * QLoRA's base model: every linear of the encoder becomes NF4 with double quantization (one dequantization buffer
 * shared by all of them); embeddings, norms and biases stay full precision, as in QLoRA. LoRA (or DoRA) is then
 * injected on top as usual.
 */
public final class Qlora {
  private Qlora() {}

  /**
   * Replaces the model's linears (BERT, LLaMA, GPT-2; not an LM head) by {@link QuantizedLinear}s, keeping those
   * that already are; returns the scratch buffer shared by the ones it made.
   */
  public static DequantBuffer quantizeBase(LinearModules encoder, DataType dtype) {
    DequantBuffer scratch = new DequantBuffer(dtype);
    encoder.mapLinears(l -> {
      if (l instanceof QuantizedLinear built) return built;   // built on a PackedTensors base: NF4 already
      if (!(l instanceof Linear linear))
        throw new IllegalStateException(l.name() + ": quantize the base before injecting adapters");
      return QuantizedLinear.of(linear, scratch);
    });
    return scratch;
  }
}
