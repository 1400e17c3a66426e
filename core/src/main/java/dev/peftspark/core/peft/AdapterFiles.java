package dev.peftspark.core.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.core.io.AtomicFiles;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.io.TensorInfo;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.prompt.PromptConfig;
import dev.peftspark.core.peft.prompt.PromptTuning;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Saves and loads a trained {@link PeftClassifier} in Hugging Face PEFT's layout: {@code adapter_config.json}
 * (PEFT's keys only, so Python's PEFT reads it) and {@code adapter_model.safetensors} with PEFT's key names
 * ({@code base_model.model.<module>.lora_A.weight}, DoRA's {@code ...lora_magnitude_vector}, IA3's {@code ...ia3_l},
 * head as modules_to_save {@code base_model.model.classifier.weight}); qlora saves a plain LoRA config, as PEFT does.
 * {@code method: full} writes {@code model.safetensors} with every tensor under its Hugging Face name instead.
 * Prompt learning saves PEFT's one tensor {@code prompt_embeddings} and the head as {@code base_model.classifier.weight}
 * (PEFT wraps no tuner model around the base there, so there is no {@code .model}).
 * What PEFT has no key for (method, pooling, label names) goes to {@code peft_spark.json}.
 */
public final class AdapterFiles {
  public static final String CONFIG = "adapter_config.json";
  public static final String WEIGHTS = "adapter_model.safetensors";
  public static final String FULL_WEIGHTS = "model.safetensors";
  public static final String EXTRA = "peft_spark.json";
  public static final String PREFIX = "base_model.model.";
  /** Prompt learning's prefix for modules_to_save (the head). */
  public static final String PROMPT_PREFIX = "base_model.";

  static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private AdapterFiles() {}

  /** What a saved adapter says about itself beyond PEFT's config. */
  public record Info(Method method, Pooling.Mode pooling, List<String> labels, String baseModel, LoraConfig lora,
                     Ia3Config ia3, PromptConfig prompt) {}

  public static void save(Path dir, PeftClassifier model, List<String> labels, String baseModel, String baseModelId)
      throws IOException {
    Files.createDirectories(dir);
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    ParamSet ps = model.params();
    boolean full = model.method() == Method.FULL;
    for (String name : ps.names()) tensors.put(full ? name : key(model.method(), name), ps.get(name).value());
    SafeTensors.write(dir.resolve(full ? FULL_WEIGHTS : WEIGHTS), tensors, Map.of("format", "pt"));
    if (!full) writeJson(dir.resolve(CONFIG), peftConfig(model, baseModelId));
    ObjectNode extra = JSON.createObjectNode();
    extra.put("method", model.method().key());
    extra.put("pooling", model.model().pooling().name().toLowerCase());
    extra.put("num_labels", model.model().numLabels());
    extra.putPOJO("labels", labels);
    extra.put("base_model", baseModel);
    writeJson(dir.resolve(EXTRA), extra);
  }

  /** The saved key of a trainable tensor: PEFT's prefix, none for {@code prompt_embeddings}. */
  static String key(Method method, String name) {
    if (!method.usesPrompt()) return PREFIX + name;
    return name.equals(PromptTuning.TENSOR) ? name : PROMPT_PREFIX + name;
  }

  private static ObjectNode peftConfig(PeftClassifier model, String baseModelId) {
    if (model.method() == Method.IA3) return ia3Config(model.ia3(), baseModelId, "SEQ_CLS", false, List.of("classifier"));
    if (model.method().usesPrompt()) return promptConfig(model, baseModelId);
    return loraConfig(model.lora(), baseModelId, "SEQ_CLS", false, List.of("classifier"));
  }

  /**
   * PEFT's LoraConfig keys.
   *
   * @param taskType      SEQ_CLS, CAUSAL_LM
   * @param fanInFanOut   true for GPT-2's Conv1D modules (PEFT sets it there)
   * @param modulesToSave modules saved whole (a classifier head), or null
   */
  static ObjectNode loraConfig(LoraConfig lora, String baseModelId, String taskType, boolean fanInFanOut,
                               List<String> modulesToSave) {
    ObjectNode c = JSON.createObjectNode();
    c.put("peft_type", "LORA");
    c.put("task_type", taskType);
    c.put("base_model_name_or_path", baseModelId);
    c.put("inference_mode", true);
    // head-only runs save as a rank-0-free LoRA config with no targets: modules_to_save carries the head
    c.put("r", lora == null ? 8 : lora.r());
    c.put("lora_alpha", lora == null ? 8 : lora.alpha());
    c.put("lora_dropout", lora == null ? 0.0 : lora.dropout());
    c.putPOJO("target_modules", lora == null ? List.of() : lora.targetModules());
    c.put("bias", lora == null ? "none" : lora.bias());
    c.put("use_rslora", lora != null && lora.useRslora());
    c.put("use_dora", lora != null && lora.useDora());
    c.put("fan_in_fan_out", fanInFanOut);
    if (lora != null && lora.initGaussian()) c.put("init_lora_weights", "gaussian"); else c.put("init_lora_weights", true);
    if (modulesToSave == null) c.putNull("modules_to_save"); else c.putPOJO("modules_to_save", modulesToSave);
    if (lora == null || lora.layersToTransform().isEmpty()) c.putNull("layers_to_transform");
    else c.putPOJO("layers_to_transform", lora.layersToTransform());
    c.putNull("layers_pattern");
    c.putPOJO("rank_pattern", lora == null ? Map.of() : lora.rankPattern());
    c.putPOJO("alpha_pattern", lora == null ? Map.of() : lora.alphaPattern());
    c.putNull("revision");
    return c;
  }

  /** PEFT's IA3Config keys (qlora adapters are plain LoRA configs: the quantization belongs to the base). */
  static ObjectNode ia3Config(Ia3Config ia3, String baseModelId, String taskType, boolean fanInFanOut,
                              List<String> modulesToSave) {
    ObjectNode c = JSON.createObjectNode();
    c.put("peft_type", "IA3");
    c.put("task_type", taskType);
    c.put("base_model_name_or_path", baseModelId);
    c.put("inference_mode", true);
    c.putPOJO("target_modules", ia3.targetModules());
    c.putPOJO("feedforward_modules", ia3.feedforwardModules());
    c.put("fan_in_fan_out", fanInFanOut);
    c.put("init_ia3_weights", true);
    if (modulesToSave == null) c.putNull("modules_to_save"); else c.putPOJO("modules_to_save", modulesToSave);
    c.putNull("revision");
    return c;
  }

  private static ObjectNode promptConfig(PeftClassifier model, String baseModelId) {
    BertConfig bert = model.model().encoder().config();
    return promptConfig(model.method(), model.prompt(), baseModelId, "SEQ_CLS", bert.hiddenSize(),
        bert.numAttentionHeads(), bert.numHiddenLayers(), List.of("classifier"));
  }

  /**
   * PEFT's PromptTuningConfig / PrefixTuningConfig keys (no projection).
   *
   * @param tokenDim  PEFT's token_dim: the hidden size, or for prefix tuning on grouped-query attention kvh·hd
   * @param heads     num_attention_heads (the key/value heads for prefix tuning on grouped-query attention)
   */
  static ObjectNode promptConfig(Method method, PromptConfig p, String baseModelId, String taskType, int tokenDim,
                                 int heads, int layers, List<String> modulesToSave) {
    ObjectNode c = JSON.createObjectNode();
    c.put("peft_type", method == Method.PROMPT_TUNING ? "PROMPT_TUNING" : "PREFIX_TUNING");
    c.put("task_type", taskType);
    c.put("base_model_name_or_path", baseModelId);
    c.put("inference_mode", true);
    c.put("num_virtual_tokens", p.numVirtualTokens());
    c.put("token_dim", tokenDim);
    c.put("num_transformer_submodules", 1);
    c.put("num_attention_heads", heads);
    c.put("num_layers", layers);
    if (method == Method.PROMPT_TUNING) {
      c.put("prompt_tuning_init", p.textInit() ? "TEXT" : "RANDOM");
      if (p.textInit()) {
        c.put("prompt_tuning_init_text", p.initText());
        c.put("tokenizer_name_or_path", baseModelId);
      } else {
        c.putNull("prompt_tuning_init_text");
        c.putNull("tokenizer_name_or_path");
      }
    } else {
      c.put("encoder_hidden_size", tokenDim);
      c.put("prefix_projection", false);
    }
    if (modulesToSave == null) c.putNull("modules_to_save"); else c.putPOJO("modules_to_save", modulesToSave);
    c.putNull("revision");
    return c;
  }

  static void writeJson(Path file, JsonNode node) throws IOException {
    byte[] bytes = JSON.writeValueAsBytes(node);
    AtomicFiles.write(file, channel -> AtomicFiles.writeFully(channel, java.nio.ByteBuffer.wrap(bytes)));
  }

  /** Reads method, pooling, labels and LoRA settings of a saved adapter directory. */
  public static Info info(Path dir) throws IOException {
    Path extraFile = dir.resolve(EXTRA);
    if (!Files.isRegularFile(extraFile)) {
      throw new IOException("not a peft-spark adapter directory: " + dir + " has no " + EXTRA
          + (Files.isDirectory(dir) ? " (it has " + list(dir) + ")" : " (no such directory)"));
    }
    JsonNode extra = readJson(extraFile);
    Method method = Method.parse(text(extra, "method", extraFile));
    Pooling.Mode pooling = Pooling.Mode.valueOf(text(extra, "pooling", extraFile).toUpperCase());
    List<String> labels = new ArrayList<>();
    extra.path("labels").forEach(n -> labels.add(n.asText()));
    PeftSection peft = readPeftConfig(dir, method);
    LoraConfig lora = peft.lora();
    Ia3Config ia3 = peft.ia3();
    return new Info(method, pooling, labels, extra.path("base_model").asText(), lora, ia3, peft.prompt());
  }

  /** The LoRA or IA3 settings of an adapter's {@code adapter_config.json} (both null for other methods). */
  record PeftSection(LoraConfig lora, Ia3Config ia3, PromptConfig prompt) {}

  static PeftSection readPeftConfig(Path dir, Method method) throws IOException {
    LoraConfig lora = null;
    Ia3Config ia3 = null;
    PromptConfig prompt = null;
    if (method.usesLora() || method == Method.IA3 || method.usesPrompt()) {
      Path cfgFile = dir.resolve(CONFIG);
      JsonNode c = readJson(cfgFile);
      String want = method == Method.IA3 ? "IA3" : method.usesPrompt() ? method.name() : "LORA";
      if (!want.equals(c.path("peft_type").asText()))
        throw new IOException(cfgFile + ": peft_type is '" + c.path("peft_type").asText() + "', expected " + want
            + " for method " + method.key());
      List<String> targets = strings(c.path("target_modules"));
      if (method == Method.IA3) {
        ia3 = new Ia3Config(targets, strings(c.path("feedforward_modules")));
      } else if (method.usesPrompt()) {
        // the saved tensor carries the init; the text only documents it (re-tokenizing it here is not needed)
        prompt = PromptConfig.random(c.path("num_virtual_tokens").asInt());
      } else {
        // a classifier's modules_to_save is its head, which it saves anyway; a causal LM's are base tensors it trains
        List<String> modulesToSave = "CAUSAL_LM".equals(c.path("task_type").asText()) ? strings(c.path("modules_to_save")) : List.of();
        lora = new LoraConfig(c.path("r").asInt(), c.path("lora_alpha").asDouble(), c.path("lora_dropout").asDouble(),
            targets, c.path("use_rslora").asBoolean(), c.path("bias").asText("none"),
            "gaussian".equals(c.path("init_lora_weights").asText()), c.path("use_dora").asBoolean(),
            intMap(c.path("rank_pattern")), doubleMap(c.path("alpha_pattern")), layers(c.path("layers_to_transform")),
            modulesToSave);
      }
    }
    return new PeftSection(lora, ia3, prompt);
  }

  /**
   * Rebuilds the classifier on {@code base} and loads the saved tensors, refusing any that do not fit. The model
   * comes back in inference mode (lora_dropout off); the trainer switches it on for training.
   */
  public static PeftClassifier load(Path dir, BertConfig cfg, Map<String, INDArray> base, DataType dtype)
      throws IOException {
    Info info = info(dir);
    PeftClassifier model = PeftClassifier.create(info.method(), info.lora(), info.ia3(), info.prompt(), cfg, base,
        Math.max(2, info.labels().size()), info.pooling(), dtype, 0);
    boolean full = info.method() == Method.FULL;
    loadInto(dir.resolve(full ? FULL_WEIGHTS : WEIGHTS), model.params(), !full, dtype, info.lora(), info.baseModel());
    model.setTraining(false);
    return model;
  }

  /**
   * Assigns every tensor of {@code ps} from {@code file}, refusing missing, unexpected or misshapen ones.
   *
   * @param prefixed keys carry PEFT's {@code base_model.model.} prefix
   * @param lora     the adapter's LoRA settings (for the error on a rank mismatch), or null
   */
  static void loadInto(Path file, ParamSet ps, boolean prefixed, DataType dtype, LoraConfig lora, String baseModel)
      throws IOException {
    try (SafeTensors st = SafeTensors.open(file)) {
      Map<String, TensorInfo> saved = new LinkedHashMap<>();
      for (TensorInfo t : st.tensors()) saved.put(prefixed ? strip(t.name(), file) : t.name(), t);
      for (String key : saved.keySet()) {
        if (ps.get(key) == null) {
          throw new IOException(file + ": tensor '" + key + "' has no place in the model on this base ("
              + "its trainable tensors are e.g. " + ps.names().stream().limit(4).toList()
              + "): the adapter was made for another base model or configuration");
        }
      }
      for (String name : ps.names()) {
        TensorInfo t = saved.get(name);
        if (t == null) throw new IOException(file + ": missing tensor '" + (prefixed ? savedKey(name) : name) + "'");
        Param p = ps.get(name);
        if (!Arrays.equals(t.shape(), p.shape)) {
          String why = rankOnly(name, t.shape(), p.shape)
              ? "but " + CONFIG + " says r=" + (lora == null ? "?" : lora.r()) + ": the adapter's config and weights disagree"
              : "but the base model needs " + Arrays.toString(p.shape) + " there: the adapter does not fit this base"
                  + " model (it was trained on '" + baseModel + "')";
          throw new IOException(file + ": tensor '" + t.name() + "' has shape " + Arrays.toString(t.shape()) + " " + why);
        }
        p.value().assign(st.loadAs(t.name(), dtype));
      }
    }
  }

  /** True when a lora_A [r, in] / lora_B [out, r] differs from what the model needs in its rank alone. */
  private static boolean rankOnly(String name, long[] saved, long[] needed) {
    if (saved.length != 2 || needed.length != 2) return false;
    if (name.endsWith(".lora_A.weight")) return saved[1] == needed[1] && saved[0] != needed[0];
    if (name.endsWith(".lora_B.weight")) return saved[0] == needed[0] && saved[1] != needed[1];
    return false;
  }

  private static Map<String, Integer> intMap(JsonNode n) {
    Map<String, Integer> out = new LinkedHashMap<>();
    n.fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue().asInt()));
    return out;
  }

  private static Map<String, Double> doubleMap(JsonNode n) {
    Map<String, Double> out = new LinkedHashMap<>();
    n.fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue().asDouble()));
    return out;
  }

  /** layers_to_transform: null, one index, or a list (PEFT accepts an int or a list). */
  private static List<Integer> layers(JsonNode n) {
    List<Integer> out = new ArrayList<>();
    if (n.isInt()) out.add(n.asInt()); else n.forEach(e -> out.add(e.asInt()));
    return out;
  }

  /** A JSON list of strings, or one string (PEFT writes either). */
  private static List<String> strings(JsonNode n) {
    List<String> out = new ArrayList<>();
    if (n.isTextual()) out.add(n.asText()); else n.forEach(e -> out.add(e.asText()));
    return out;
  }

  /** PEFT's saved key to the parameter name: {@code base_model.model.} (tuners), {@code base_model.} (prompt learning's
   *  head), nothing for {@code prompt_embeddings}. */
  private static String strip(String key, Path file) throws IOException {
    if (key.equals(PromptTuning.TENSOR)) return key;
    if (key.startsWith(PREFIX)) return key.substring(PREFIX.length());
    if (key.startsWith(PROMPT_PREFIX)) return key.substring(PROMPT_PREFIX.length());
    throw new IOException(file + ": tensor '" + key + "' does not start with '" + PREFIX + "'");
  }

  private static String savedKey(String name) {
    return name.equals(PromptTuning.TENSOR) ? name : PREFIX + name;
  }

  static JsonNode readJson(Path file) throws IOException {
    try {
      return JSON.readTree(Files.readString(file, StandardCharsets.UTF_8));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IOException(file + " is not valid JSON: " + e.getOriginalMessage());
    }
  }

  static String text(JsonNode n, String field, Path file) throws IOException {
    if (!n.hasNonNull(field)) throw new IOException(file + ": missing field '" + field + "'");
    return n.get(field).asText();
  }

  static String list(Path dir) throws IOException {
    try (var s = Files.list(dir)) {
      return new TreeSet<>(s.map(p -> p.getFileName().toString()).toList()).toString();
    }
  }
}
