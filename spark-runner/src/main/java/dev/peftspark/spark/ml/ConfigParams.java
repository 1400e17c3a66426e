package dev.peftspark.spark.ml;

import dev.peftspark.core.config.ConfigDocs;
import dev.peftspark.core.config.ConfigException;
import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.DoubleParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import scala.runtime.AbstractFunction1;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The Spark ML Params of the stages, generated from the YAML config keys so that the two never drift: one Param
 * per key of {@link JobConfigLoader#DEFAULTS} (minus {@link #EXCLUDED}), named by the key with its dots turned into
 * underscores ({@code lora.r} → {@code lora_r}, {@code train.batch_size} → {@code train_batch_size}; Spark param
 * names cannot hold dots), typed by the key's Java type, documented by {@link ConfigDocs}, defaulted from
 * {@link JobConfigLoader#DEFAULTS} and validated by {@link JobConfigLoader} itself.
 */
public final class ConfigParams implements Serializable {
  /** Keys that are not Params, and why: the stages take them from the DataFrame or the SparkSession. */
  public static final Map<String, String> EXCLUDED = excluded();

  private static Map<String, String> excluded() {
    Map<String, String> m = new LinkedHashMap<>();
    m.put("output_dir", "fit returns a Model; save it with write().save(path)");
    m.put("runner", "the stages always train on the Dataset's SparkSession");
    m.put("data.train", "the training data is the Dataset given to fit");
    m.put("data.test", "evaluate by transforming a test Dataset");
    m.put("data.format", "the Dataset is already parsed");
    m.put("data.text_field", "the textCol param (its default is this key's default)");
    m.put("data.label_field", "the labelCol param (its default is this key's default)");
    m.put("spark.master", "the Dataset's SparkSession decides");
    m.put("checkpoint.every_steps", "checkpoints live in output_dir, which the stages do not have");
    m.put("train.log_every", "console progress of the CLI only");
    return Collections.unmodifiableMap(m);
  }

  /** Further keys the causal-LM stages do not hold as Params, and why. */
  public static final Map<String, String> EXCLUDED_CAUSAL_LM = excludedCausalLm();

  private static Map<String, String> excludedCausalLm() {
    Map<String, String> m = new LinkedHashMap<>(EXCLUDED);
    m.put("task", "the stage is causal_lm");
    m.put("data.lm_format", "set by the column params: inputIdsCol (tokenized), promptCol (instruction), else textCol");
    m.put("data.prompt_field", "the promptCol param");
    m.put("data.response_field", "the responseCol param");
    m.put("data.per_file", "for plain-text files; each row is a document");
    m.put("head.pooling", "classification only");
    m.put("head.num_labels", "classification only");
    return Collections.unmodifiableMap(m);
  }

  /** A valid causal-LM model name for checking one key alone (see {@link #convert}); never trained on. */
  private static final String SOME_CAUSAL_LM = "a-causal-lm-directory";

  private final Map<String, Param<?>> byKey = new LinkedHashMap<>();
  private final Map<String, String> excluded;
  private final String task;   // null: the task param decides (classification stages)

  /** Creates the Params of the classification stage {@code parent} (its uid). */
  public ConfigParams(String parent) {
    this(parent, null, EXCLUDED);
  }

  /** The Params of a causal-LM stage: task fixed to causal_lm, {@link #EXCLUDED_CAUSAL_LM} left out. */
  public static ConfigParams forCausalLm(String parent) {
    return new ConfigParams(parent, "causal_lm", EXCLUDED_CAUSAL_LM);
  }

  private ConfigParams(String parent, String task, Map<String, String> excluded) {
    this.task = task;
    this.excluded = excluded;
    Map<String, Object> defaults = JobConfigLoader.flatten(JobConfigLoader.DEFAULTS);
    Map<String, Class<?>> types = types();
    for (Map.Entry<String, Object> e : defaults.entrySet()) {
      String key = e.getKey();
      if (excluded.containsKey(key)) continue;
      String doc = ConfigDocs.DESCRIPTIONS.getOrDefault(key, key) + " (YAML key " + key + ")";
      byKey.put(key, param(parent, key, doc, types.get(key)));
    }
  }

  /** The Spark param name of a dotted config key. */
  public static String paramName(String key) {
    return key.replace('.', '_');
  }

  /** Keys that are not Params of this stage, with the reason. */
  public Map<String, String> excludedKeys() {
    return excluded;
  }

  /** Config key → its Param, in the YAML's declaration order. */
  public Map<String, Param<?>> byKey() {
    return Collections.unmodifiableMap(byKey);
  }

  /** The config key a Param name or a dotted key stands for, or a ConfigException naming the known ones. */
  public String keyOf(String nameOrKey) {
    if (byKey.containsKey(nameOrKey)) return nameOrKey;
    for (String key : byKey.keySet()) if (paramName(key).equals(nameOrKey)) return key;
    String why = excluded.get(nameOrKey.replace('_', '.'));
    if (why == null) why = excluded.get(nameOrKey);
    throw new ConfigException(nameOrKey, why != null ? "is not a stage param: " + why
        : "unknown config key or param; known: " + String.join(", ", byKey.keySet().stream().map(ConfigParams::paramName).toList()));
  }

  /**
   * Hands every key and its default to {@code setDefault} (the stage's). A causal-LM stage's {@code model} has
   * none (the config's default, minilm, is an encoder): fit says so until it is set.
   */
  @SuppressWarnings({"unchecked", "rawtypes"})
  void setDefaults(java.util.function.BiConsumer<Param, Object> setDefault) {
    Map<String, Object> defaults = JobConfigLoader.flatten(JobConfigLoader.DEFAULTS);
    byKey.forEach((key, p) -> {
      Object v = task != null && key.equals("model") ? null : toSpark(defaults.get(key));
      if (v != null) setDefault.accept(p, v);
    });
  }

  /**
   * The config the stage's params describe: every key a param defines (set or default), the excluded keys at
   * their defaults, {@code runner: spark}; validated as a YAML config would be (ranges, choices, consistency).
   */
  public JobConfig toConfig(org.apache.spark.ml.param.Params stage) {
    Map<String, Object> root = new LinkedHashMap<>();
    byKey.forEach((key, p) -> {
      if (stage.isDefined(p)) put(root, key, toConfigValue(stage.getOrDefault(p)));
    });
    put(root, "runner", "spark");
    if (task != null) put(root, "task", task);
    try {
      return JobConfigLoader.fromMap(root, List.of());
    } catch (ConfigException e) {
      throw new ConfigException(e.key() == null ? null : e.key() + " (param " + paramName(e.key()) + ")",
          e.getMessage().substring(e.key() == null ? 0 : e.key().length() + 2));
    }
  }

  /**
   * {@code value} converted and checked as the config loader would for {@code key} (strings such as "16" are
   * accepted for numbers), in the type its Param holds; a ConfigException names the key when it is unusable.
   */
  public Object convert(String key, Object value) {
    Map<String, Object> root = new LinkedHashMap<>();
    if (task != null) {   // a causal-LM context, so that the key's own checks run before the model's
      put(root, "task", task);
      put(root, "model", key.equals("model_config") ? "random" : SOME_CAUSAL_LM);
    }
    put(root, key, toConfigValue(value));
    JobConfig cfg;
    try {
      cfg = JobConfigLoader.fromMap(root, List.of());
    } catch (ConfigException e) {
      if (key.equals(e.key()) || (e.key() != null && e.key().startsWith(key + "."))) {
        throw new ConfigException(key + " (param " + paramName(key) + ")", e.getMessage().substring(e.key().length() + 2));
      }
      if (e.key() == null) throw e;
      // another key's cross-check (e.g. batch_size vs grad_accum) with the rest at defaults: decided at fit
      return toSpark(toConfigValue(value));
    }
    return toSpark(JobConfigLoader.flatten(cfg).get(key));
  }

  /** Every key's value in {@code cfg}, as the Params hold them. */
  public Map<String, Object> values(JobConfig cfg) {
    Map<String, Object> flat = JobConfigLoader.flatten(cfg);
    Map<String, Object> out = new LinkedHashMap<>();
    byKey.keySet().forEach(key -> out.put(key, toSpark(flat.get(key))));
    return out;
  }

  /** The Java type of every leaf key, read off the JobConfig records. */
  private static Map<String, Class<?>> types() {
    Map<String, Class<?>> out = new LinkedHashMap<>();
    collect(JobConfig.class, "", out);
    return out;
  }

  private static void collect(Class<?> record, String prefix, Map<String, Class<?>> out) {
    for (var c : record.getRecordComponents()) {
      String key = (prefix.isEmpty() ? "" : prefix + ".") + c.getName().replaceAll("([a-z0-9])([A-Z])", "$1_$2").toLowerCase();
      if (c.getType().isRecord()) collect(c.getType(), key, out);
      else out.put(key, c.getType());
    }
  }

  private Param<?> param(String parent, String key, String doc, Class<?> type) {
    String name = paramName(key);
    if (type == int.class) return new IntParam(parent, name, doc, new Check<>(key, this));
    if (type == long.class) return new LongParam(parent, name, doc, new Check<>(key, this));
    if (type == double.class) return new DoubleParam(parent, name, doc, new Check<>(key, this));
    if (type == boolean.class) return new BooleanParam(parent, name, doc);
    if (type == String.class) return new Param<String>(parent, name, doc, new Check<>(key, this));
    if (type == List.class) return new StringListParam(parent, name, doc, new Check<>(key, this));
    if (type == Map.class) return new StringMapParam(parent, name, doc, new Check<>(key, this));
    throw new IllegalStateException("config key " + key + " has a type the stages cannot hold: " + type);
  }

  /** A Param validator that asks the config loader and throws its message (Spark's own would only say "invalid"). */
  private static final class Check<T> extends AbstractFunction1<T, Object> implements Serializable {
    private final String key;
    private final ConfigParams owner;

    Check(String key, ConfigParams owner) {
      this.key = key;
      this.owner = owner;
    }

    @Override
    public Object apply(T value) {
      owner.convert(key, value);
      return Boolean.TRUE;
    }
  }

  /** Config values (List, Map, boxed scalars) in the types Spark's Params hold (String[] for lists). */
  static Object toSpark(Object v) {
    if (v instanceof List<?> l) return l.stream().map(String::valueOf).toArray(String[]::new);
    if (v instanceof Map<?, ?> m) return new java.util.TreeMap<>(m);
    return v;
  }

  private static Object toConfigValue(Object v) {
    if (v instanceof String[] a) return Arrays.asList(a);
    if (v instanceof Map<?, ?> m) return new LinkedHashMap<>(m);
    return v;
  }

  @SuppressWarnings("unchecked")
  private static void put(Map<String, Object> root, String key, Object value) {
    String[] parts = key.split("\\.");
    Map<String, Object> m = root;
    for (int i = 0; i < parts.length - 1; i++) {
      m = (Map<String, Object>) m.computeIfAbsent(parts[i], k -> new LinkedHashMap<String, Object>());
    }
    m.put(parts[parts.length - 1], value);
  }

  /** Names of every config param (for docs and tests). */
  public List<String> names() {
    return new ArrayList<>(byKey.keySet().stream().map(ConfigParams::paramName).toList());
  }
}
