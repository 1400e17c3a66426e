package dev.peftspark.core.peft;

import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.peft.ia3.Ia3Linear;
import dev.peftspark.core.peft.lora.LoraLinear;
import dev.peftspark.core.quant.QuantizedLinear;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * PEFT's {@code merge_and_unload}: the adapter folded into the base weights, as a plain BERT checkpoint under
 * Hugging Face BertModel names (LoRA/DoRA: {@code W + s·BA}, DoRA rescaled per row; IA3: {@code diag(l)·W} or
 * {@code W·diag(l)}; trained biases and full fine-tuning: their current values), plus the head as
 * {@code classifier.weight} / {@code classifier.bias} (BertForSequenceClassification's names).
 */
public final class AdapterMerge {
  private AdapterMerge() {}

  public static Map<String, INDArray> mergedWeights(PeftClassifier model) {
    if (model.method().usesPrompt()) {
      throw new IllegalArgumentException(model.method().key() + " adapters cannot be merged into the weights (virtual "
          + "tokens are extra inputs, not a weight update; PEFT has no merge for prompt learning either): use the "
          + "adapter with its base model");
    }
    Map<String, INDArray> out = new LinkedHashMap<>();
    BertClassifier net = model.model();
    for (Param p : net.encoder().params()) {
      if (p.name.endsWith(".weight") || p.name.endsWith(".bias")) {
        if (!p.name.contains(".lora_")) out.put(p.name, p.value().dup());
      }
    }
    for (LinearLayer l : net.encoder().linears()) {
      out.put(l.name() + ".weight", mergedWeight(l));
      INDArray bias = l instanceof Ia3Linear ia3 ? ia3.mergedBias() : biasOf(l.base());
      if (bias != null) out.put(l.name() + ".bias", bias.dup());
    }
    out.put(BertClassifier.HEAD + ".weight", net.head().weight().value().dup());
    out.put(BertClassifier.HEAD + ".bias", net.head().bias().value().dup());
    return out;
  }

  /** The merged {@code [out, in]} weight of a plain or adapted linear. */
  public static INDArray mergedWeight(LinearLayer l) {
    if (l instanceof LoraLinear lora) return lora.mergedWeight();
    if (l instanceof Ia3Linear ia3) return ia3.mergedWeight();
    if (l instanceof Linear plain) return plain.weight().value().dup();
    if (l instanceof QuantizedLinear q) return q.dequantizedWeight().dup();
    throw new IllegalStateException(l.name() + ": cannot merge a " + l.getClass().getSimpleName());
  }

  /** The merged bias of a plain or adapted linear, or null. */
  public static INDArray mergedBias(LinearLayer l) {
    INDArray b = l instanceof Ia3Linear ia3 ? ia3.mergedBias() : biasOf(l.base());
    return b == null ? null : b.dup();
  }

  private static INDArray biasOf(LinearLayer base) {
    Param b = base instanceof Linear l ? l.bias() : base instanceof QuantizedLinear q ? q.bias() : null;
    return b == null ? null : b.value();
  }
}
