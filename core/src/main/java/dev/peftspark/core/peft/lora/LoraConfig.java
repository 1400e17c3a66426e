package dev.peftspark.core.peft.lora;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * LoRA hyper-parameters with Hugging Face PEFT's semantics ({@code LoraConfig}).
 *
 * @param r                 rank of the update B·A (modules not in {@code rankPattern})
 * @param alpha             lora_alpha; scaling = alpha / r (alpha / √r with rsLoRA)
 * @param dropout           lora_dropout, applied to the adapter's input only
 * @param targetModules     module-name suffixes ("query" matches "encoder.layer.0.attention.self.query"), or one
 *                          regular expression matched against the full name, or "all-linear"
 * @param useRslora         rank-stabilised scaling
 * @param bias              "none"; "lora_only" (the biases of the adapted linears train too) or "all" (every
 *                          bias of the model trains, LayerNorm biases included: PEFT's {@code "bias" in name})
 * @param initGaussian      init_lora_weights "gaussian" (A ~ N(0, 1/r)) instead of kaiming-uniform
 * @param useDora           weight-decomposed LoRA (DoRA): a trainable magnitude per output row
 * @param rankPattern       rank per module: key = regex matched as PEFT does ({@code (.*\.)?(key)$} on the full
 *                          name), first matching key wins
 * @param alphaPattern      lora_alpha per module, matched the same way
 * @param layersToTransform layer indices to adapt (empty: all); ignored with a regex target_modules, as in PEFT
 * @param modulesToSave     causal LMs: modules whose base tensors train whole beside the adapters (PEFT's
 *                          modules_to_save, e.g. lm_head), matched as PEFT does: the module name ends with the entry
 */
public record LoraConfig(int r, double alpha, double dropout, List<String> targetModules, boolean useRslora,
                         String bias, boolean initGaussian, boolean useDora, Map<String, Integer> rankPattern,
                         Map<String, Double> alphaPattern, List<Integer> layersToTransform, List<String> modulesToSave)
    implements java.io.Serializable {
  public static final List<String> BIAS_CHOICES = List.of("none", "lora_only", "all");

  /** Plain LoRA (no DoRA). */
  public LoraConfig(int r, double alpha, double dropout, List<String> targetModules, boolean useRslora,
                    String bias, boolean initGaussian) {
    this(r, alpha, dropout, targetModules, useRslora, bias, initGaussian, false);
  }

  /** No modules_to_save. */
  public LoraConfig(int r, double alpha, double dropout, List<String> targetModules, boolean useRslora,
                    String bias, boolean initGaussian, boolean useDora, Map<String, Integer> rankPattern,
                    Map<String, Double> alphaPattern, List<Integer> layersToTransform) {
    this(r, alpha, dropout, targetModules, useRslora, bias, initGaussian, useDora, rankPattern, alphaPattern,
        layersToTransform, List.of());
  }

  /** No per-module patterns, every layer. */
  public LoraConfig(int r, double alpha, double dropout, List<String> targetModules, boolean useRslora,
                    String bias, boolean initGaussian, boolean useDora) {
    this(r, alpha, dropout, targetModules, useRslora, bias, initGaussian, useDora, Map.of(), Map.of(), List.of());
  }

  public LoraConfig {
    if (r < 1) throw new IllegalArgumentException("lora.r must be >= 1, got " + r);
    if (!(alpha > 0)) throw new IllegalArgumentException("lora.alpha must be > 0, got " + alpha);
    if (dropout < 0 || dropout >= 1) throw new IllegalArgumentException("lora.dropout must be in [0, 1), got " + dropout);
    if (targetModules == null || targetModules.isEmpty())
      throw new IllegalArgumentException("lora.target_modules must name at least one module");
    if (bias == null) bias = "none";
    if (!BIAS_CHOICES.contains(bias))
      throw new IllegalArgumentException("lora.bias must be one of " + BIAS_CHOICES + ", got '" + bias + "'");
    targetModules = List.copyOf(targetModules);
    rankPattern = rankPattern == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(rankPattern));
    alphaPattern = alphaPattern == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(alphaPattern));
    layersToTransform = layersToTransform == null ? List.of() : List.copyOf(layersToTransform);
    modulesToSave = modulesToSave == null ? List.of() : List.copyOf(modulesToSave);
    rankPattern.forEach((k, v) -> {
      if (v == null || v < 1) throw new IllegalArgumentException("lora.rank_pattern['" + k + "'] must be >= 1, got " + v);
    });
    alphaPattern.forEach((k, v) -> {
      if (v == null || !(v > 0)) throw new IllegalArgumentException("lora.alpha_pattern['" + k + "'] must be > 0, got " + v);
    });
    for (int i : layersToTransform)
      if (i < 0) throw new IllegalArgumentException("lora.layers_to_transform: layer indices are >= 0, got " + i);
  }

  /** The same settings with another rank and alpha everywhere (no patterns): what a combined adapter gets. */
  public LoraConfig withRank(int newR, double newAlpha, List<String> newTargets) {
    return new LoraConfig(newR, newAlpha, dropout, newTargets, false, bias, initGaussian, false);
  }

  public double scaling() { return useRslora ? alpha / Math.sqrt(r) : alpha / r; }

  /** Rank of {@code module} (full name): rank_pattern's first matching key, else r. */
  public int rank(String module) {
    String key = patternKey(rankPattern.keySet(), module);
    return key == null ? r : rankPattern.get(key);
  }

  /** lora_alpha of {@code module}: alpha_pattern's first matching key, else alpha. */
  public double alpha(String module) {
    String key = patternKey(alphaPattern.keySet(), module);
    return key == null ? alpha : alphaPattern.get(key);
  }

  public double scaling(String module) {
    int rr = rank(module);
    double a = alpha(module);
    return useRslora ? a / Math.sqrt(rr) : a / rr;
  }

  /** PEFT's get_pattern_key: the key equal to the name, or one whose regex matches a dotted suffix of it. */
  static String patternKey(Iterable<String> keys, String module) {
    for (String k : keys) {
      if (k.equals(module) || Pattern.compile("(.*\\.)?(" + k + ")").matcher(module).matches()) return k;
    }
    return null;
  }
}
