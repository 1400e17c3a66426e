package dev.peftspark.core.peft.ia3;

import java.util.List;

/**
 * IA3 settings with Hugging Face PEFT's semantics ({@code IA3Config}).
 *
 * @param targetModules      modules that get a learned vector: module-name suffixes matched as LoRA's are
 *                           ({@code key} matches {@code encoder.layer.0.attention.self.key}), or one regex, or
 *                           {@code all-linear}
 * @param feedforwardModules the targets whose <em>input</em> is scaled (the rest scale their output); PEFT tests
 *                           these with a plain {@code name.endsWith(entry)}, so BERT's default {@code output.dense}
 *                           also catches {@code attention.output.dense} — kept that way so adapters match PEFT's
 */
public record Ia3Config(List<String> targetModules, List<String> feedforwardModules) {
  public Ia3Config {
    if (targetModules == null || targetModules.isEmpty())
      throw new IllegalArgumentException("ia3.target_modules must name at least one module");
    targetModules = List.copyOf(targetModules);
    feedforwardModules = feedforwardModules == null ? List.of() : List.copyOf(feedforwardModules);
  }

  /** PEFT's defaults for BERT: key, value, output.dense; feed-forward output.dense. */
  public static Ia3Config bertDefaults() {
    return new Ia3Config(List.of("key", "value", "output.dense"), List.of("output.dense"));
  }

  /** PEFT's defaults for LLaMA, Mistral and Qwen2: k_proj, v_proj, down_proj; feed-forward down_proj. */
  public static Ia3Config llamaDefaults() {
    return new Ia3Config(List.of("k_proj", "v_proj", "down_proj"), List.of("down_proj"));
  }

  /** PEFT's defaults for GPT-2: c_attn, mlp.c_proj; feed-forward mlp.c_proj. */
  public static Ia3Config gpt2Defaults() {
    return new Ia3Config(List.of("c_attn", "mlp.c_proj"), List.of("mlp.c_proj"));
  }

  /** PEFT's feed-forward test: one regex matched against the whole name, else any plain suffix. */
  public boolean isFeedforward(String moduleName) {
    if (feedforwardModules.size() == 1 && isRegex(feedforwardModules.get(0)))
      return moduleName.matches(feedforwardModules.get(0));
    return feedforwardModules.stream().anyMatch(moduleName::endsWith);
  }

  static boolean isRegex(String s) {
    for (char c : s.toCharArray()) if ("*+?[]()|^$\\".indexOf(c) >= 0) return true;
    return false;
  }
}
