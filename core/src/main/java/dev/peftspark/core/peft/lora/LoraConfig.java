package dev.peftspark.core.peft.lora;

import java.util.List;

/**
 * LoRA hyper-parameters with Hugging Face PEFT's semantics ({@code LoraConfig}).
 *
 * @param r             rank of the update B·A
 * @param alpha         lora_alpha; scaling = alpha / r (alpha / √r with rsLoRA)
 * @param dropout       lora_dropout, applied to the adapter's input only
 * @param targetModules module-name suffixes ("query" matches "encoder.layer.0.attention.self.query"), or one
 *                      regular expression matched against the full name, or "all-linear"
 * @param useRslora     rank-stabilised scaling
 * @param initGaussian  init_lora_weights "gaussian" (A ~ N(0, 1/r)) instead of kaiming-uniform
 * @param useDora       weight-decomposed LoRA (DoRA): a trainable magnitude per output row
 */
public record LoraConfig(int r, double alpha, double dropout, List<String> targetModules, boolean useRslora,
                         String bias, boolean initGaussian, boolean useDora) {
  /** Plain LoRA (no DoRA). */
  public LoraConfig(int r, double alpha, double dropout, List<String> targetModules, boolean useRslora,
                    String bias, boolean initGaussian) {
    this(r, alpha, dropout, targetModules, useRslora, bias, initGaussian, false);
  }

  public LoraConfig {
    if (r < 1) throw new IllegalArgumentException("lora.r must be >= 1, got " + r);
    if (!(alpha > 0)) throw new IllegalArgumentException("lora.alpha must be > 0, got " + alpha);
    if (dropout < 0 || dropout >= 1) throw new IllegalArgumentException("lora.dropout must be in [0, 1), got " + dropout);
    if (targetModules == null || targetModules.isEmpty())
      throw new IllegalArgumentException("lora.target_modules must name at least one module");
    if (bias == null) bias = "none";
    if (!bias.equals("none")) throw new IllegalArgumentException("lora.bias: only 'none' is supported, got '" + bias + "'");
    targetModules = List.copyOf(targetModules);
  }

  public double scaling() { return useRslora ? alpha / Math.sqrt(r) : alpha / r; }
}
