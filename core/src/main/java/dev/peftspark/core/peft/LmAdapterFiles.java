package dev.peftspark.core.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.CausalLmConfig;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.prompt.PromptConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static dev.peftspark.core.peft.AdapterFiles.CONFIG;
import static dev.peftspark.core.peft.AdapterFiles.EXTRA;
import static dev.peftspark.core.peft.AdapterFiles.FULL_WEIGHTS;
import static dev.peftspark.core.peft.AdapterFiles.PREFIX;
import static dev.peftspark.core.peft.AdapterFiles.WEIGHTS;

/**
 * Saves and loads a trained {@link PeftCausalLm} in Hugging Face PEFT's layout: {@code adapter_config.json}
 * ({@code task_type: CAUSAL_LM}, {@code fan_in_fan_out: true} on GPT-2's Conv1D modules) and
 * {@code adapter_model.safetensors} with PEFT's keys ({@code base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight},
 * {@code base_model.model.transformer.h.0.attn.c_attn.lora_A.weight}, {@code base_model.model.lm_head.lora_A.weight}).
 * {@code method: full} writes a whole Hugging Face model directory instead ({@code config.json},
 * {@code model.safetensors} under the checkpoint's own names), so the result of pretraining is a base model.
 * Prompt learning saves PEFT's one tensor {@code prompt_embeddings} (no prefix): {@code [nv, H]} for prompt tuning,
 * {@code [nv, L·2·kvh·hd]} for prefix tuning. {@code peft_spark.json} says the method and the base.
 */
public final class LmAdapterFiles {
  public static final String TASK = "causal_lm";
  public static final String MODEL_CONFIG = "config.json";

  private LmAdapterFiles() {}

  /** What a saved causal-LM adapter says about itself. */
  public record Info(Method method, String baseModel, LoraConfig lora, Ia3Config ia3, PromptConfig prompt) {}

  /**
   * Writes into {@code dir} (created if needed; the caller makes the whole directory atomic).
   *
   * @param shape       the base model's shape (its config.json is written for {@code full})
   * @param baseModel   what the job config named (a directory, or "random")
   * @param baseModelId written as PEFT's base_model_name_or_path
   */
  public static void save(Path dir, PeftCausalLm model, CausalLmConfig shape, String baseModel, String baseModelId)
      throws IOException {
    Files.createDirectories(dir);
    if (model.method() == Method.FULL) {
      SafeTensors.write(dir.resolve(FULL_WEIGHTS), model.model().stateDict(), Map.of("format", "pt"));
      AdapterFiles.writeJson(dir.resolve(MODEL_CONFIG), shape.toJson());
    } else {
      Map<String, INDArray> tensors = new LinkedHashMap<>();
      for (String name : model.params().names())
        tensors.put(AdapterFiles.key(model.method(), name), model.params().get(name).value());
      SafeTensors.write(dir.resolve(WEIGHTS), tensors, Map.of("format", "pt"));
      boolean conv1d = shape.isGpt2();
      ObjectNode c = switch (model.method()) {
        case IA3 -> AdapterFiles.ia3Config(model.ia3(), baseModelId, "CAUSAL_LM", conv1d, null);
        case PROMPT_TUNING, PREFIX_TUNING -> promptConfig(model, shape, baseModelId);
        default -> AdapterFiles.loraConfig(model.lora(), baseModelId, "CAUSAL_LM", conv1d, modulesToSave(model.lora()));
      };
      AdapterFiles.writeJson(dir.resolve(CONFIG), c);
    }
    ObjectNode extra = AdapterFiles.JSON.createObjectNode();
    extra.put("method", model.method().key());
    extra.put("task", TASK);
    extra.put("base_model", baseModel);
    AdapterFiles.writeJson(dir.resolve(EXTRA), extra);
  }

  /**
   * PEFT's prompt-learning config for a causal LM: token_dim the hidden size, except for prefix tuning on
   * grouped-query attention, where PEFT (its {@code _prepare_prompt_learning_config}) makes token_dim kvh·hd and
   * num_attention_heads kvh, as the prefix holds keys and values.
   */
  static ObjectNode promptConfig(PeftCausalLm model, CausalLmConfig shape, String baseModelId) {
    int hidden, heads, layers, kvHeads, headDim;
    if (shape.isGpt2()) {
      var g = shape.gpt2();
      hidden = g.nEmbd(); heads = g.nHead(); layers = g.nLayer(); kvHeads = heads; headDim = g.headDim();
    } else {
      var l = shape.llama();
      hidden = l.hiddenSize(); heads = l.numAttentionHeads(); layers = l.numHiddenLayers(); kvHeads = l.numKeyValueHeads();
      headDim = l.headDim();
    }
    boolean prefix = model.method() == Method.PREFIX_TUNING;
    return AdapterFiles.promptConfig(model.method(), model.prompt(), baseModelId, "CAUSAL_LM",
        prefix ? kvHeads * headDim : hidden, prefix ? kvHeads : heads, layers, null);
  }

  /** PEFT's modules_to_save: null when there are none (as PEFT writes it). */
  static java.util.List<String> modulesToSave(LoraConfig lora) {
    return lora.modulesToSave().isEmpty() ? null : lora.modulesToSave();
  }

  /** Reads the method and settings of a saved causal-LM adapter directory. */
  public static Info info(Path dir) throws IOException {
    Path extraFile = dir.resolve(EXTRA);
    if (!Files.isRegularFile(extraFile)) {
      throw new IOException("not a peft-spark adapter directory: " + dir + " has no " + EXTRA
          + (Files.isDirectory(dir) ? " (it has " + AdapterFiles.list(dir) + ")" : " (no such directory)"));
    }
    JsonNode extra = AdapterFiles.readJson(extraFile);
    if (!TASK.equals(extra.path("task").asText()))
      throw new IOException(extraFile + ": this adapter is for task '" + extra.path("task").asText("classification")
          + "', not " + TASK);
    Method method = Method.parse(AdapterFiles.text(extra, "method", extraFile));
    var peft = AdapterFiles.readPeftConfig(dir, method);
    return new Info(method, extra.path("base_model").asText(), peft.lora(), peft.ia3(), peft.prompt());
  }

  /**
   * Rebuilds the model on {@code base} and loads the saved tensors, refusing any that do not fit; a {@code full}
   * directory is loaded as the model itself ({@code base} is not used). Comes back in inference mode.
   */
  public static PeftCausalLm load(Path dir, PeftCausalLm.Base base, DataType dtype) throws IOException {
    Info info = info(dir);
    if (info.method() == Method.FULL) {
      CausalLmConfig shape = CausalLmConfig.read(dir.resolve(MODEL_CONFIG));
      Map<String, INDArray> weights = CausalLmConfig.readWeights(dir);
      return PeftCausalLm.create(Method.FULL, null, null, t -> shape.build(weights, dtype, t), dtype, 0);
    }
    PeftCausalLm model = PeftCausalLm.create(info.method(), info.lora(), info.ia3(), info.prompt(), base, dtype, 0);
    AdapterFiles.loadInto(dir.resolve(WEIGHTS), model.params(), true, dtype, info.lora(), info.baseModel());
    model.setTraining(false);
    return model;
  }
}
