package dev.peftspark.core.peft.prompt;

import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Prefix tuning (Li & Liang, PEFT's {@code PREFIX_TUNING} without projection): every layer's attention gets
 * {@code num_virtual_tokens} trainable keys and values prepended to its own (all queries may attend to them). One
 * tensor {@code prompt_embeddings [nv, L·2·H]} holds them in PEFT's layout: columns {@code (2·layer + kv)·H + head·hd
 * + d}, kv 0 = key, 1 = value (PEFT views it as {@code [nv, 2L, heads, hd]} for {@code past_key_values}).
 */
public final class PrefixTuning {
  private PrefixTuning() {}

  public static Param inject(BertEncoder encoder, PromptConfig cfg, DataType dtype, long seed) {
    if (cfg.textInit()) throw new IllegalArgumentException("prefix tuning has no text init (PEFT's PREFIX_TUNING has none); "
        + "use prompt.init: random");
    int layers = encoder.layers().size(), h = encoder.config().hiddenSize();
    Param p = Param.trainable(PromptTuning.TENSOR,
        PromptTuning.normal(cfg.numVirtualTokens(), layers * 2 * h, dtype, seed ^ 0x2545F4914F6CDD1DL));
    encoder.setPrefix(p);
    return p;
  }

  /**
   * Prefix tuning for a causal LM: {@code prompt_embeddings [nv, L·2·kvh·hd]}, PEFT's layout with its GQA rule
   * ({@code token_dim = kvh·hd}, {@code num_attention_heads = kvh}): columns {@code ((2·layer + kv)·kvh + head)·hd + d},
   * kv 0 = key, 1 = value. Keys enter attention as cache entries (not rotated); the real tokens follow at positions
   * nv, nv+1, ... N(0, 1) init, as PEFT's {@code nn.Embedding}.
   */
  public static Param inject(CausalLm model, PromptConfig cfg, DataType dtype, long seed) {
    if (cfg.textInit()) throw new IllegalArgumentException("prefix tuning has no text init (PEFT's PREFIX_TUNING has none); "
        + "use prompt.init: random");
    Param p = Param.trainable(PromptTuning.TENSOR,
        PromptTuning.normal(cfg.numVirtualTokens(), model.prefixWidth(), dtype, seed ^ 0x2545F4914F6CDD1DL));
    model.setPrefix(p);
    return p;
  }
}
