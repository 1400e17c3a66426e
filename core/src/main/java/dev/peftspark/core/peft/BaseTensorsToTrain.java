package dev.peftspark.core.peft;

import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.lora.LoraLinear;

import java.util.ArrayList;
import java.util.List;

/**
 * Base tensors of a causal LM that train beside LoRA, with PEFT's rules: {@code bias: all} trains every tensor with
 * "bias" in its name, {@code lora_only} the biases of the adapted linears, and {@code modules_to_save} every tensor
 * of the modules whose name ends with an entry (PEFT's {@code key.endswith(target_key)}). They are saved under
 * their own names ({@code base_model.model.<name>}); the base tensors themselves are never written (the
 * {@link dev.peftspark.core.nn.ParamSet} trains a copy).
 */
final class BaseTensorsToTrain {
  private BaseTensorsToTrain() {}

  /** Unfreezes them in {@code model} (already adapted), before its ParamSet is built; returns them. */
  static List<Param> unfreeze(CausalLm model, LoraConfig lora) {
    List<Param> chosen = new ArrayList<>();
    List<Param> base = model.params().stream().filter(p -> !p.isTrainable()).toList();
    if (lora.bias().equals("all")) {
      for (Param p : base) if (p.name.contains("bias")) chosen.add(p);
    } else if (lora.bias().equals("lora_only")) {
      List<LinearLayer> adapted = new ArrayList<>(model.linears());
      adapted.add(model.head());
      for (LinearLayer l : adapted) {
        if (!(l instanceof LoraLinear)) continue;
        for (Param p : l.base().params()) if (p.name.equals(l.name() + ".bias")) chosen.add(p);
      }
    }
    for (String key : lora.modulesToSave()) {
      List<Param> matched = base.stream().filter(p -> module(p.name).endsWith(key)).toList();
      if (matched.isEmpty()) throw new IllegalArgumentException(noMatch(model, key));
      for (Param p : matched) if (!chosen.contains(p)) chosen.add(p);
    }
    for (Param p : chosen) p.unfreeze();
    return chosen;
  }

  /** {@code model.layers.0.self_attn.q_proj.bias} → {@code model.layers.0.self_attn.q_proj}. */
  private static String module(String tensor) {
    int dot = tensor.lastIndexOf('.');
    return dot < 0 ? tensor : tensor.substring(0, dot);
  }

  private static String noMatch(CausalLm model, String key) {
    if (model.head().name().endsWith(key) && model.head().params().stream().noneMatch(p -> module(p.name).endsWith(key)))
      return "lora.modules_to_save: '" + key + "' is tied to the input embeddings in this model (tie_word_embeddings);"
          + " name the embeddings (e.g. embed_tokens or wte) to train the shared table";
    List<String> examples = model.params().stream().map(p -> module(p.name)).distinct().limit(6).toList();
    return "lora.modules_to_save: '" + key + "' matches no module of the model (its modules are e.g. " + examples
        + "; an entry matches a module whose name ends with it)";
  }
}
