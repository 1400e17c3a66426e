package dev.peftspark.spark.dist;

import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.prompt.PromptConfig;
import dev.peftspark.spark.job.BaseStorage;
import dev.peftspark.spark.job.CausalLmBase;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.io.Serializable;

/**
 * What an executor needs to rebuild the driver's causal LM on its own cached base ({@link CausalLmBase#load}; the
 * base never travels): plain values only. Parameter values are not part of it; they arrive with every step.
 *
 * @param model       a model directory or {@code random}
 * @param modelConfig the config.json for {@code random}, else unused
 * @param seed        train.seed: the random base's init, and the default dropout stream
 * @param gradientCheckpointing train.gradient_checkpointing: executors recompute activations as the driver's model
 */
public record LmSpec(String model, String modelConfig, long seed, String method, LoraConfig lora, Ia3Config ia3,
                     PromptConfig prompt, boolean gradientCheckpointing) implements Serializable {

  /**
   * The driver's model exactly: its method and adapter settings (from the config or an init_adapter) and whether it
   * checkpoints its layers.
   */
  public static LmSpec of(String model, String modelConfig, long seed, PeftCausalLm m) {
    return new LmSpec(model, modelConfig, seed, m.method().key(), m.lora(), m.ia3(), m.prompt(),
        m.model().gradientCheckpointing());
  }

  /**
   * A fresh model on this JVM's cached base; {@code dropoutSeed} only matters for dropout masks (prompt learning's
   * random init differs with it, but every value is replaced by the driver's before a step).
   */
  public PeftCausalLm build(long dropoutSeed) throws IOException {
    CausalLmBase base = CausalLmBase.load(model, modelConfig, seed, BaseStorage.of(Method.parse(method)));
    PeftCausalLm m = PeftCausalLm.create(Method.parse(method), lora, ia3, prompt, base.builder(), DataType.FLOAT,
        dropoutSeed);
    m.model().setGradientCheckpointing(gradientCheckpointing);
    return m;
  }

  /** Dropout draws random masks: then every task needs a model seeded by (step, partition) to repeat exactly. */
  public boolean stochastic() { return lora != null && lora.dropout() > 0; }
}
