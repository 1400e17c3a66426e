package dev.peftspark.core.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.io.TensorInfo;
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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * LoRA and DoRA on a {@link CausalLm} in PEFT's layout: {@code adapter_config.json} ({@code task_type CAUSAL_LM},
 * {@code fan_in_fan_out} true for GPT-2's Conv1D modules) and {@code adapter_model.safetensors} with keys such as
 * {@code base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight} or
 * {@code base_model.model.transformer.h.0.attn.c_attn.lora_A.weight}. A and B keep PEFT's shapes
 * ({@code [r, in]}, {@code [out, r]}) whatever the base storage; {@code lm_head} can be targeted when untied.
 */
public final class CausalLora {
  private CausalLora() {}

  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /**
   * Injects LoRA (DoRA with {@code use_dora}) into the targeted linears and, when named, the head
   * ({@link PeftCausalLm#withHead}; a tied head's adapter leaves the embeddings alone, and merging unties it).
   */
  public static List<Param> inject(CausalLm model, LoraConfig cfg, DataType dtype, long seed) {
    return Lora.inject(PeftCausalLm.withHead(model, cfg.targetModules()), cfg, dtype, seed);
  }

  /** Writes the adapter tensors (every {@code .lora_*} parameter) and PEFT's config into {@code dir}. */
  public static void save(Path dir, CausalLm model, LoraConfig cfg, String baseModel) throws IOException {
    if (!cfg.bias().equals("none")) throw new IllegalArgumentException("lora.bias '" + cfg.bias() + "' is not saved for causal LMs yet (use none)");
    Files.createDirectories(dir);
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    for (Param p : model.params()) if (p.name.contains(".lora_")) tensors.put(AdapterFiles.PREFIX + p.name, p.value());
    if (tensors.isEmpty()) throw new IllegalArgumentException("the model has no LoRA parameters to save");
    SafeTensors.write(dir.resolve(AdapterFiles.WEIGHTS), tensors, Map.of("format", "pt"));
    ObjectNode c = JSON.createObjectNode();
    c.put("peft_type", "LORA");
    c.put("task_type", "CAUSAL_LM");
    c.put("base_model_name_or_path", baseModel);
    c.put("inference_mode", true);
    c.put("r", cfg.r());
    c.put("lora_alpha", cfg.alpha());
    c.put("lora_dropout", cfg.dropout());
    c.putPOJO("target_modules", cfg.targetModules());
    c.put("bias", "none");
    c.put("use_rslora", cfg.useRslora());
    c.put("use_dora", cfg.useDora());
    c.put("fan_in_fan_out", model instanceof Gpt2Model);
    if (cfg.initGaussian()) c.put("init_lora_weights", "gaussian"); else c.put("init_lora_weights", true);
    c.putPOJO("rank_pattern", cfg.rankPattern());
    c.putPOJO("alpha_pattern", cfg.alphaPattern());
    if (cfg.layersToTransform().isEmpty()) c.putNull("layers_to_transform"); else c.putPOJO("layers_to_transform", cfg.layersToTransform());
    c.putNull("modules_to_save");
    Files.writeString(dir.resolve(AdapterFiles.CONFIG), JSON.writeValueAsString(c));
  }

  /** PEFT's LoRA settings from {@code adapter_config.json} (dropout 0: loaded adapters are for inference). */
  public static LoraConfig readConfig(Path dir) throws IOException {
    Path file = dir.resolve(AdapterFiles.CONFIG);
    if (!Files.isRegularFile(file)) throw new IOException(dir + ": no " + AdapterFiles.CONFIG + " (not a PEFT adapter directory)");
    JsonNode c;
    try {
      c = JSON.readTree(Files.readString(file));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IOException(file + " is not valid JSON: " + e.getOriginalMessage());
    }
    String type = c.path("peft_type").asText();
    if (!type.equals("LORA")) throw new IOException(file + ": peft_type is '" + type + "'; causal LMs load LORA adapters (LoRA, DoRA)");
    if (!c.path("bias").asText("none").equals("none"))
      throw new IOException(file + ": bias '" + c.path("bias").asText() + "' is not supported for causal LMs (expected none)");
    if (!c.path("r").canConvertToInt() || c.path("r").asInt() < 1) throw new IOException(file + ": 'r' must be a positive integer");
    List<String> targets = new ArrayList<>();
    JsonNode t = c.path("target_modules");
    if (t.isTextual()) targets.add(t.asText()); else t.forEach(n -> targets.add(n.asText()));
    if (targets.isEmpty()) throw new IOException(file + ": 'target_modules' is missing or empty");
    Map<String, Integer> ranks = new LinkedHashMap<>();
    c.path("rank_pattern").fields().forEachRemaining(e -> ranks.put(e.getKey(), e.getValue().asInt()));
    Map<String, Double> alphas = new LinkedHashMap<>();
    c.path("alpha_pattern").fields().forEachRemaining(e -> alphas.put(e.getKey(), e.getValue().asDouble()));
    List<Integer> layers = new ArrayList<>();
    JsonNode l = c.path("layers_to_transform");
    if (l.isInt()) layers.add(l.asInt()); else l.forEach(n -> layers.add(n.asInt()));
    return new LoraConfig(c.path("r").asInt(), c.path("lora_alpha").asDouble(c.path("r").asInt()), 0.0, targets,
        c.path("use_rslora").asBoolean(false), "none", "gaussian".equals(c.path("init_lora_weights").asText()),
        c.path("use_dora").asBoolean(false), ranks, alphas, layers);
  }

  /** Injects the adapter of {@code dir} into {@code model} and loads its tensors, refusing any that do not fit. */
  public static LoraConfig load(Path dir, CausalLm model, DataType dtype) throws IOException {
    LoraConfig cfg = readConfig(dir);
    Path file = dir.resolve(AdapterFiles.WEIGHTS);
    if (!Files.isRegularFile(file)) throw new IOException(dir + ": no " + AdapterFiles.WEIGHTS);
    Map<String, Param> wanted = new LinkedHashMap<>();
    List<Param> injected;
    try {
      injected = inject(model, cfg, dtype, 0);
    } catch (IllegalArgumentException e) {
      throw new IOException(dir.resolve(AdapterFiles.CONFIG) + " does not fit this model: " + e.getMessage());
    }
    for (Param p : injected) wanted.put(AdapterFiles.PREFIX + p.name, p);
    try (SafeTensors st = SafeTensors.open(file)) {
      for (TensorInfo t : st.tensors()) {
        if (!wanted.containsKey(t.name()))
          throw new IOException(file + ": tensor '" + t.name() + "' has no place in this model (its adapter tensors are e.g. "
              + wanted.keySet().stream().limit(3).toList() + "): the adapter was made for another base model");
      }
      for (var e : wanted.entrySet()) {
        Param p = e.getValue();
        if (!st.contains(e.getKey())) throw new IOException(file + ": missing tensor '" + e.getKey() + "'");
        TensorInfo t = st.tensors().stream().filter(x -> x.name().equals(e.getKey())).findFirst().orElseThrow();
        if (!Arrays.equals(t.shape(), p.shape))
          throw new IOException(file + ": tensor '" + e.getKey() + "' has shape " + Arrays.toString(t.shape()) + " but the model needs "
              + Arrays.toString(p.shape) + " (r = " + cfg.r() + " in " + AdapterFiles.CONFIG + ")");
        p.value().assign(st.loadAs(e.getKey(), dtype));
      }
    }
    return cfg;
  }
}
