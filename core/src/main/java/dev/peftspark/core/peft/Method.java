package dev.peftspark.core.peft;

import java.util.Arrays;

/**
 * What is trained besides the head: {@code lora} adapters (DoRA with {@code lora.use_dora}), {@code qlora} (LoRA on
 * an NF4-quantized base), {@code ia3} scaling vectors, the {@code head} alone, or everything ({@code full}).
 */
public enum Method {
  LORA, QLORA, IA3, HEAD, FULL;

  /** Methods configured by the {@code lora} section. */
  public boolean usesLora() { return this == LORA || this == QLORA; }

  public static Method parse(String s) {
    for (Method m : values()) if (m.key().equals(s)) return m;
    throw new IllegalArgumentException("method must be one of " + Arrays.stream(values()).map(Method::key).toList() + ", got '" + s + "'");
  }

  public String key() { return name().toLowerCase(); }
}
