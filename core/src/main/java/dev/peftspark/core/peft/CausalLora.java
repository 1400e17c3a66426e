package dev.peftspark.core.peft;

import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.Gpt2Model;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.peft.lora.Lora;
import dev.peftspark.core.peft.lora.LoraConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * PEFT adapters on a {@link CausalLm} in PEFT's layout: {@code adapter_config.json} ({@code task_type CAUSAL_LM},
 * {@code fan_in_fan_out} true for GPT-2's Conv1D modules) and {@code adapter_model.safetensors} with keys such as
 * {@code base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight} or
 * {@code base_model.model.transformer.h.0.attn.c_attn.lora_A.weight}. A and B keep PEFT's shapes
 * ({@code [r, in]}, {@code [out, r]}) whatever the base storage; {@code lm_head} can be targeted. Adapters saved by
 * {@code train} (with {@code peft_spark.json}) load through {@link LmAdapterFiles}; these are the plain ones.
 */
public final class CausalLora {
  private CausalLora() {}

  /**
   * Injects LoRA (DoRA with {@code use_dora}) into the targeted linears and, when named, the head, and unfreezes the
   * base tensors that {@code bias} and {@code modules_to_save} train
   * ({@link PeftCausalLm#withHead}; a tied head's adapter leaves the embeddings alone, and merging unties it).
   */
  public static List<Param> inject(CausalLm model, LoraConfig cfg, DataType dtype, long seed) {
    List<Param> all = new java.util.ArrayList<>(Lora.inject(PeftCausalLm.withHead(model, cfg.targetModules()), cfg, dtype, seed));
    all.addAll(BaseTensorsToTrain.unfreeze(model, cfg));   // lora.bias and lora.modules_to_save
    return all;
  }

  /**
   * Writes the adapter tensors (every trainable parameter: {@code .lora_*}, and the base tensors that
   * {@code lora.bias} and {@code lora.modules_to_save} train) and PEFT's config into {@code dir}.
   */
  public static void save(Path dir, CausalLm model, LoraConfig cfg, String baseModel) throws IOException {
    Files.createDirectories(dir);
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    for (Param p : model.trainableParams()) tensors.put(AdapterFiles.PREFIX + p.name, p.value());
    if (tensors.keySet().stream().noneMatch(k -> k.contains(".lora_")))
      throw new IllegalArgumentException("the model has no LoRA parameters to save");
    SafeTensors.write(dir.resolve(AdapterFiles.WEIGHTS), tensors, Map.of("format", "pt"));
    AdapterFiles.writeJson(dir.resolve(AdapterFiles.CONFIG),
        AdapterFiles.loraConfig(cfg, baseModel, "CAUSAL_LM", model instanceof Gpt2Model, LmAdapterFiles.modulesToSave(cfg)));
  }

  /**
   * Injects the plain PEFT adapter of {@code dir} (LoRA, DoRA, IA3, prompt or prefix tuning: {@code adapter_config.json} and
   * {@code adapter_model.safetensors}, no {@code peft_spark.json} needed) into {@code model} and loads its tensors,
   * refusing any that do not fit. Dropout is off: a loaded adapter is for inference.
   */
  public static void load(Path dir, CausalLm model, DataType dtype) throws IOException {
    Path config = dir.resolve(AdapterFiles.CONFIG);
    if (!Files.isRegularFile(config)) throw new IOException(dir + ": no " + AdapterFiles.CONFIG + " (not a PEFT adapter directory)");
    String type = AdapterFiles.readJson(config).path("peft_type").asText();
    Method method = switch (type) {
      case "LORA" -> Method.LORA;
      case "IA3" -> Method.IA3;
      case "PROMPT_TUNING" -> Method.PROMPT_TUNING;
      case "PREFIX_TUNING" -> Method.PREFIX_TUNING;
      default -> throw new IOException(config + ": peft_type is '" + type + "'; causal LMs load LORA (LoRA, DoRA), IA3,"
          + " PROMPT_TUNING or PREFIX_TUNING adapters");
    };
    var peft = AdapterFiles.readPeftConfig(dir, method);
    PeftCausalLm adapted;
    try {
      adapted = PeftCausalLm.create(method, peft.lora(), peft.ia3(), peft.prompt(), trainable -> model, dtype, 0);
    } catch (IllegalArgumentException e) {
      throw new IOException(config + " does not fit this model: " + e.getMessage());
    }
    String base = AdapterFiles.readJson(config).path("base_model_name_or_path").asText("?");
    AdapterFiles.loadInto(dir.resolve(AdapterFiles.WEIGHTS), adapted.params(), true, dtype, peft.lora(), base);
    adapted.setTraining(false);
  }
}
