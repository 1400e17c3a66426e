package dev.peftspark.core.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import java.io.IOException;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a job config: YAML with snake_case keys laid over {@link #DEFAULTS}, then {@code --set key=value}
 * overrides (dotted keys; values parsed as YAML scalars or flow lists), then validation. Every problem is one
 * {@link ConfigException} naming the file or {@code --set}, the key, and what is allowed.
 */
public final class JobConfigLoader {
  private JobConfigLoader() {}

  /** Every key's default; a config names only what it changes. */
  public static final JobConfig DEFAULTS = new JobConfig(
      "minilm", "classification", null, "lora", "spark", null, null, null,
      new JobConfig.Data(List.of(), List.of(), "auto", "text", "label", "skip", 128),
      new JobConfig.Lora(8, 8.0, 0.0, List.of("query", "value"), false, "none", false),
      new JobConfig.Ia3(List.of("key", "value", "output.dense"), List.of("output.dense")),
      new JobConfig.Prompt(20, "random", null),
      new JobConfig.Head("mean", 0),
      new JobConfig.Train(1, -1, 32, 1, 5e-4, "adamw", 0.0, 0.9, 0.9, 0.999, 1e-8, 1.0, 0.06, "linear", 42, 10),
      new JobConfig.Spark("local[*]", 0, "MEMORY_AND_DISK_SER"),
      new JobConfig.Distributed("gradient", 1, "stop", 1),
      new JobConfig.Checkpoint(0));

  /** The values a string key may take (keys not listed here are free text). */
  public static final Map<String, List<String>> CHOICES = choices();

  private static Map<String, List<String>> choices() {
    Map<String, List<String>> m = new LinkedHashMap<>();
    m.put("task", List.of("classification", "causal_lm"));
    m.put("method", List.of("lora", "qlora", "ia3", "prompt_tuning", "prefix_tuning", "full", "head"));
    m.put("runner", List.of("local", "spark"));
    m.put("data.format", List.of("auto", "jsonl", "json", "csv", "txt"));
    m.put("data.lm_format", List.of("text", "instruction", "tokenized"));
    m.put("data.empty_records", List.of("skip", "reject"));
    m.put("lora.bias", List.of("none", "lora_only", "all"));
    m.put("lora.init_lora_weights", List.of("true", "gaussian"));
    m.put("prompt.init", List.of("random", "text"));
    m.put("head.pooling", List.of("mean", "cls"));
    m.put("train.optimizer", List.of("adamw", "sgd"));
    m.put("train.schedule", List.of("linear", "cosine", "constant"));
    m.put("spark.storage_level", List.of("MEMORY_ONLY", "MEMORY_ONLY_SER", "MEMORY_AND_DISK",
        "MEMORY_AND_DISK_SER", "DISK_ONLY", "OFF_HEAP"));
    m.put("distributed.sync", List.of("gradient", "average"));
    m.put("distributed.on_non_finite", List.of("stop", "skip"));
    return Map.copyOf(m);
  }

  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()
      .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
      .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
      .enable(YAMLGenerator.Feature.INDENT_ARRAYS_WITH_INDICATOR));

  public static JobConfig load(Path yaml, List<String> overrides) {
    String text;
    try {
      text = Files.readString(yaml);
    } catch (NoSuchFileException e) {
      throw new ConfigException("config file not found: " + yaml, e);
    } catch (IOException e) {
      throw new ConfigException("cannot read config file " + yaml + ": " + e.getMessage(), e);
    }
    return fromYaml(text, yaml.toString(), overrides);
  }

  /** Like {@link #load} for YAML text; {@code source} names it in error messages (a file name, a resource). */
  public static JobConfig fromYaml(String text, String source, List<String> overrides) {
    Object root;
    try {
      JsonNode tree = YAML.readTree(text); // empty or comment-only text: a missing node, i.e. all defaults
      root = tree == null || tree.isMissingNode() || tree.isNull() ? null : YAML.treeToValue(tree, Object.class);
    } catch (JsonProcessingException e) {
      JsonLocation at = e.getLocation();
      String where = at == null ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr();
      throw new ConfigException(source + ": invalid YAML" + where + ": " + e.getOriginalMessage(), e);
    }
    if (root != null && !(root instanceof Map<?, ?>)) {
      throw new ConfigException(source + ": expected a mapping of config keys at the top, got "
          + ConfigSchema.describe(root), (Throwable) null);
    }
    try {
      @SuppressWarnings("unchecked") Map<String, Object> map = root == null ? Map.of() : (Map<String, Object>) root;
      return fromMap(map, overrides);
    } catch (ConfigException e) {
      throw e.getMessage().startsWith("--set ") ? e : new ConfigException(source + ": " + e.getMessage(), e);
    }
  }

  /** Binds a parsed YAML tree (snake_case keys, sections as maps), applies overrides, validates. */
  public static JobConfig fromMap(Map<String, Object> root, List<String> overrides) {
    Map<String, Object> merged = ConfigSchema.toMap(DEFAULTS);
    ConfigSchema.merge(merged, root == null ? Map.of() : root, JobConfig.class, "");
    Set<String> fromCli = new HashSet<>();
    for (String o : overrides == null ? List.<String>of() : overrides) {
      try {
        fromCli.add(applyOverride(merged, o));
      } catch (ConfigException e) {
        throw new ConfigException("--set " + o + ": " + e.getMessage(), e);
      }
    }
    try {
      JobConfig cfg = ConfigSchema.bind(JobConfig.class, merged, "");
      validate(cfg);
      return cfg;
    } catch (ConfigException e) {
      if (e.key() != null && fromCli.contains(e.key())) throw new ConfigException("--set " + e.getMessage(), e);
      throw e;
    }
  }

  /** Applies one {@code key=value}; returns the key. String keys take the text as is; others parse it as YAML. */
  private static String applyOverride(Map<String, Object> merged, String override) {
    int eq = override.indexOf('=');
    if (eq <= 0) throw new ConfigException(null, "expected key=value, e.g. train.lr=1e-3");
    String key = override.substring(0, eq).trim();
    String raw = override.substring(eq + 1).trim();
    RecordComponent c = ConfigSchema.lookup(key);
    Object value;
    if (c.getType() == String.class) {
      value = raw.isEmpty() ? null : raw;
    } else {
      try {
        value = raw.isEmpty() ? null : YAML.readValue(raw, Object.class);
      } catch (JsonProcessingException e) {
        throw new ConfigException(key, "cannot parse value '" + raw + "': " + e.getOriginalMessage());
      }
    }
    ConfigSchema.put(merged, key, value);
    return key;
  }

  /** Checks values (ranges, choices, consistency); requirements of a particular command are separate. */
  public static void validate(JobConfig c) {
    Map<String, Object> flat = flatten(c);
    CHOICES.forEach((key, allowed) -> {
      Object v = flat.get(key);
      if (!allowed.contains(v)) {
        throw new ConfigException(key, "must be one of " + String.join(", ", allowed) + "; got "
            + ConfigSchema.describe(v));
      }
    });
    for (String key : List.of("model", "data.text_field", "data.label_field", "spark.master")) {
      Object v = flat.get(key);
      if (v == null || v.toString().isBlank()) throw new ConfigException(key, "must not be empty");
    }
    var d = c.data();
    var l = c.lora();
    var t = c.train();
    check(d.maxLength() >= 2, "data.max_length", "must be ≥ 2 (room for [CLS] and [SEP])", d.maxLength());
    validateCausalLm(c);
    check(l.r() >= 1, "lora.r", "must be ≥ 1", l.r());
    check(l.alpha() > 0, "lora.alpha", "must be > 0", l.alpha());
    check(l.dropout() >= 0 && l.dropout() < 1, "lora.dropout", "must be in [0, 1)", l.dropout());
    check(!l.targetModules().isEmpty(), "lora.target_modules", "must name at least one module", l.targetModules());
    for (String layer : l.layersToTransform()) {
      check(layer.matches("\\d{1,9}"), "lora.layers_to_transform", "must list layer indices (integers ≥ 0)", l.layersToTransform());
    }
    for (String m : l.modulesToSave())
      check(m != null && !m.isBlank(), "lora.modules_to_save", "must list module names such as lm_head", l.modulesToSave());
    check(l.modulesToSave().isEmpty() || c.task().equals("causal_lm"), "lora.modules_to_save",
        "is for task: causal_lm (classification always saves its head, as PEFT's modules_to_save)", l.modulesToSave());
    l.rankPattern().forEach((k, v) -> check(v.matches("[1-9]\\d{0,8}"), "lora.rank_pattern." + k, "must be a rank ≥ 1", v));
    l.alphaPattern().forEach((k, v) -> check(isPositive(v), "lora.alpha_pattern." + k, "must be a number > 0", v));
    check(!c.ia3().targetModules().isEmpty(), "ia3.target_modules", "must name at least one module",
        c.ia3().targetModules());
    check(c.prompt().numVirtualTokens() >= 1, "prompt.num_virtual_tokens", "must be ≥ 1", c.prompt().numVirtualTokens());
    if (c.prompt().init().equals("text")) {
      check(c.prompt().initText() != null && !c.prompt().initText().isBlank(), "prompt.init_text",
          "is required with prompt.init: text", c.prompt().initText());
      check(!c.method().equals("prefix_tuning"), "prompt.init", "must be random for prefix_tuning (PEFT has no text init there)",
          c.prompt().init());
    }
    check(c.head().numLabels() == 0 || c.head().numLabels() >= 2, "head.num_labels",
        "must be 0 (inferred from the training labels) or ≥ 2", c.head().numLabels());
    check(t.epochs() >= 1, "train.epochs", "must be ≥ 1", t.epochs());
    check(t.maxSteps() == -1 || t.maxSteps() >= 1, "train.max_steps", "must be -1 (no limit) or ≥ 1", t.maxSteps());
    check(t.batchSize() >= 1, "train.batch_size", "must be ≥ 1", t.batchSize());
    check(t.gradAccum() >= 1, "train.grad_accum", "must be ≥ 1", t.gradAccum());
    check(t.batchSize() % t.gradAccum() == 0, "train.batch_size",
        "must be divisible by train.grad_accum (" + t.gradAccum() + ")", t.batchSize());
    check(t.lr() > 0 && Double.isFinite(t.lr()), "train.lr", "must be > 0", t.lr());
    check(t.weightDecay() >= 0, "train.weight_decay", "must be ≥ 0", t.weightDecay());
    check(t.momentum() >= 0 && t.momentum() < 1, "train.momentum", "must be in [0, 1)", t.momentum());
    check(t.beta1() >= 0 && t.beta1() < 1, "train.beta1", "must be in [0, 1)", t.beta1());
    check(t.beta2() >= 0 && t.beta2() < 1, "train.beta2", "must be in [0, 1)", t.beta2());
    check(t.eps() > 0, "train.eps", "must be > 0", t.eps());
    check(t.gradClip() >= 0, "train.grad_clip", "must be ≥ 0 (0: off)", t.gradClip());
    check(t.warmupRatio() >= 0 && t.warmupRatio() < 1, "train.warmup_ratio", "must be in [0, 1)", t.warmupRatio());
    check(t.logEvery() >= 1, "train.log_every", "must be ≥ 1", t.logEvery());
    check(c.spark().partitions() >= 0, "spark.partitions", "must be ≥ 0 (0: default parallelism)",
        c.spark().partitions());
    check(c.distributed().averageEvery() >= 1, "distributed.average_every", "must be ≥ 1",
        c.distributed().averageEvery());
    check(c.distributed().aggregationDepth() >= 1, "distributed.aggregation_depth",
        "must be ≥ 1 (1: the driver sums the partitions' gradients; 2 or more: a tree on the executors)",
        c.distributed().aggregationDepth());
    check(c.checkpoint().everySteps() >= 0, "checkpoint.every_steps", "must be ≥ 0 (0: no checkpoints)",
        c.checkpoint().everySteps());
  }

  /** The keys that only one task reads, and what model: random needs. */
  private static void validateCausalLm(JobConfig c) {
    boolean lm = c.task().equals("causal_lm");
    var d = c.data();
    if (!lm) {
      check(!d.format().equals("txt"), "data.format", "txt (plain text) is for task: causal_lm", d.format());
      check(!c.model().equals("random"), "model", "random is for task: causal_lm (pretraining)", c.model());
      check(c.tokenizer() == null, "tokenizer", "is for task: causal_lm (classification uses the model's)", c.tokenizer());
      return;
    }
    check(!c.model().equals("minilm"), "model", "must be a causal LM (a Hugging Face LLaMA/Mistral/Qwen2/GPT-2 "
        + "directory, or random with model_config); minilm is an encoder", c.model());
    check(!c.method().equals("head"), "method", "head trains a classifier head; a causal LM has none (use "
        + "lora, qlora, ia3, prompt_tuning, prefix_tuning or full)", c.method());
    boolean random = c.model().equals("random");
    check(!random || (c.modelConfig() != null && !c.modelConfig().isBlank()), "model_config",
        "is required with model: random (a config.json giving the architecture and size)", c.modelConfig());
    check(random || c.modelConfig() == null, "model_config", "is only for model: random (a model directory has its "
        + "own config.json)", c.modelConfig());
    check(c.tokenizer() == null || !c.tokenizer().isBlank(), "tokenizer",
        "must be gpt2, a tokenizer.json path, or left out", c.tokenizer());
    check(!random || c.tokenizer() != null, "tokenizer", "is required with model: random (there is no model "
        + "directory to take tokenizer.json from): use gpt2 or a tokenizer.json path", c.tokenizer());
    check(!d.format().equals("txt") || d.lmFormat().equals("text"), "data.lm_format",
        "must be text for plain-text files (data.format: txt)", d.lmFormat());
    for (String key : List.of("prompt_field", "response_field")) {
      String v = key.equals("prompt_field") ? d.promptField() : d.responseField();
      check(v != null && !v.isBlank(), "data." + key, "must not be empty", v);
    }
    check(d.template() == null || d.template().contains("{prompt}"), "data.template",
        "must contain {prompt} (where the prompt goes)", d.template());
  }

  /** What {@code train} needs beyond {@link #validate}: somewhere to write and something to train on. */
  public static void validateForTrain(JobConfig c) {
    if (c.outputDir() == null || c.outputDir().isBlank()) {
      throw new ConfigException("output_dir", "is required for train (where the adapter and metrics go)");
    }
    if (c.data().train().isEmpty()) throw new ConfigException("data.train", "is required for train (file list)");
  }

  /** What {@code eval} needs beyond {@link #validate}: a test set. */
  public static void validateForEval(JobConfig c) {
    if (c.data().test().isEmpty()) throw new ConfigException("data.test", "is required for eval (file list)");
  }

  private static boolean isPositive(String s) {
    try {
      return Double.parseDouble(s) > 0;
    } catch (NumberFormatException e) {
      return false;
    }
  }

  private static void check(boolean ok, String key, String rule, Object got) {
    if (!ok) throw new ConfigException(key, rule + "; got " + got);
  }

  /** The resolved config as YAML (written to output_dir/config.yaml); {@link #fromYaml} reads it back equal. */
  public static String toYaml(JobConfig c) {
    try {
      return YAML.writeValueAsString(ConfigSchema.toMap(c));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write config as YAML", e);
    }
  }

  /** Nested maps with snake_case keys, as in the YAML. */
  public static Map<String, Object> toMap(JobConfig c) {
    return ConfigSchema.toMap(c);
  }

  /** Dotted key → value for every leaf key, in declaration order (e.g. {@code train.batch_size → 32}). */
  private static final java.util.Set<String> LEAVES = java.util.Set.copyOf(ConfigSchema.leafKeys(JobConfig.class, ""));

  /** Every leaf key with its value (map-valued keys such as lora.rank_pattern stay one entry). */
  public static Map<String, Object> flatten(JobConfig c) {
    Map<String, Object> out = new LinkedHashMap<>();
    flattenInto(out, "", ConfigSchema.toMap(c));
    return out;
  }

  @SuppressWarnings("unchecked")
  private static void flattenInto(Map<String, Object> out, String prefix, Map<String, Object> m) {
    m.forEach((k, v) -> {
      String key = ConfigSchema.join(prefix, k);
      if (v instanceof Map<?, ?> nested && !LEAVES.contains(key)) flattenInto(out, key, (Map<String, Object>) nested);
      else out.put(key, v);
    });
  }
}
