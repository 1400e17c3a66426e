package dev.peftspark.core.peft;

import java.util.Arrays;

/** What is trained: {@code lora} adapters (+ head), the {@code head} alone, or everything ({@code full}). */
public enum Method {
  LORA, HEAD, FULL;

  public static Method parse(String s) {
    for (Method m : values()) if (m.key().equals(s)) return m;
    throw new IllegalArgumentException("method must be one of " + Arrays.stream(values()).map(Method::key).toList() + ", got '" + s + "'");
  }

  public String key() { return name().toLowerCase(); }
}
