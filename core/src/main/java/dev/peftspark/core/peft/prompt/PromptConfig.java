package dev.peftspark.core.peft.prompt;

import java.io.Serializable;
import java.util.List;

/**
 * Prompt learning settings with Hugging Face PEFT's semantics ({@code PromptTuningConfig} / {@code PrefixTuningConfig}
 * without a projection).
 *
 * @param numVirtualTokens virtual tokens prepended to the input (prompt tuning) or to every layer's keys and values
 *                         (prefix tuning)
 * @param initTokenIds     prompt tuning's TEXT init: the token ids of {@code initText} (repeated, then cut to
 *                         {@code numVirtualTokens}, as PEFT does); empty for RANDOM init (N(0, 1), PEFT's
 *                         {@code nn.Embedding} default)
 * @param initText         the text those ids came from (saved as {@code prompt_tuning_init_text}); null for random
 */
public record PromptConfig(int numVirtualTokens, List<Integer> initTokenIds, String initText) implements Serializable {
  public PromptConfig {
    if (numVirtualTokens < 1)
      throw new IllegalArgumentException("prompt.num_virtual_tokens must be >= 1, got " + numVirtualTokens);
    initTokenIds = initTokenIds == null ? List.of() : List.copyOf(initTokenIds);
    if (initText != null && initTokenIds.isEmpty())
      throw new IllegalArgumentException("prompt.init_text '" + initText + "' gave no tokens");
  }

  public static PromptConfig random(int numVirtualTokens) { return new PromptConfig(numVirtualTokens, List.of(), null); }

  public boolean textInit() { return !initTokenIds.isEmpty(); }

  /** PEFT's TEXT init ids: the text's ids repeated until there are enough, then cut to the virtual token count. */
  public int[] virtualTokenIds() {
    int[] ids = new int[numVirtualTokens];
    for (int i = 0; i < numVirtualTokens; i++) ids[i] = initTokenIds.get(i % initTokenIds.size());
    return ids;
  }
}
