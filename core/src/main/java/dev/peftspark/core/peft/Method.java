package dev.peftspark.core.peft;

import java.util.Arrays;

/**
 * What is trained besides the head: {@code lora} adapters (DoRA with {@code lora.use_dora}), {@code qlora} (LoRA on
 * an NF4-quantized base), {@code ia3} scaling vectors, {@code prompt_tuning} virtual input tokens,
 * {@code prefix_tuning} per-layer virtual keys and values, the {@code head} alone, or everything ({@code full}).
 */
public enum Method {
  LORA, QLORA, IA3, PROMPT_TUNING, PREFIX_TUNING, HEAD, FULL;

  /** Methods configured by the {@code lora} section. */
  public boolean usesLora() { return this == LORA || this == QLORA; }

  /** Prompt learning: configured by the {@code prompt} section, saved as one {@code prompt_embeddings} tensor. */
  public boolean usesPrompt() { return this == PROMPT_TUNING || this == PREFIX_TUNING; }

  public static Method parse(String s) {
    for (Method m : values()) if (m.key().equals(s)) return m;
    throw new IllegalArgumentException("method must be one of " + Arrays.stream(values()).map(Method::key).toList() + ", got '" + s + "'");
  }

  public String key() { return name().toLowerCase(); }
}
