package dev.peftspark.spark.dist;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.optim.Optimizer;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.prompt.PromptConfig;
import dev.peftspark.spark.job.BaseModel;
import dev.peftspark.spark.job.BaseStorage;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.io.Serializable;

/**
 * Everything an executor needs to rebuild the driver's model structure on its own copy of the base (loaded by
 * {@link BaseModel#load} from {@code baseModel}, never shipped): plain values only, so it serialises small.
 * Parameter values are not part of it; they arrive with every step.
 */
public record ModelSpec(String baseModel, String method, LoraConfig lora, Ia3Config ia3, PromptConfig prompt,
                        int numLabels, String pooling, long seed, String optimizer, double weightDecay,
                        double momentum, double beta1, double beta2, double eps, double gradClip)
    implements Serializable {

  /** The driver's model exactly: every method's settings travel (DoRA, bias, patterns, QLoRA, IA3, prompts). */
  public static ModelSpec of(String baseModel, PeftClassifier m, JobConfig.Train t) {
    return new ModelSpec(baseModel, m.method().key(), m.lora(), m.ia3(), m.prompt(), m.model().numLabels(),
        m.model().pooling().name(), t.seed(), t.optimizer(), t.weightDecay(), t.momentum(), t.beta1(), t.beta2(),
        t.eps(), t.gradClip());
  }

  /** A fresh model on this JVM's cached base; {@code seed} only matters for dropout masks. */
  public PeftClassifier build(long seed) throws IOException {
    BaseModel base = BaseModel.load(baseModel, BaseStorage.of(Method.parse(method)));
    return PeftClassifier.create(Method.parse(method), lora, ia3, prompt, base.config(), base.weights(), numLabels,
        Pooling.Mode.valueOf(pooling), DataType.FLOAT, seed);
  }

  /** Dropout draws random masks: then every task needs a model seeded by (step, partition) to repeat exactly. */
  public boolean stochastic() { return lora != null && lora.dropout() > 0; }

  public Optimizer newOptimizer(PeftClassifier model) {
    return Optimizer.create(optimizer, Math.max(1, model.params().size()), model.decayMask(), weightDecay, momentum,
        beta1, beta2, eps);
  }
}
