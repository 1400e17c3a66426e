package dev.peftspark.spark.dist;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.optim.Optimizer;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.spark.job.BaseModel;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * Everything an executor needs to rebuild the driver's model structure on its own copy of the base (loaded by
 * {@link BaseModel#load} from {@code baseModel}, never shipped): plain values only, so it serialises small.
 * Parameter values are not part of it; they arrive with every step.
 */
public record ModelSpec(String baseModel, String method, int loraR, double loraAlpha, double loraDropout,
                        ArrayList<String> loraTargets, boolean loraRslora, int numLabels, String pooling, long seed,
                        String optimizer, double weightDecay, double momentum, double beta1, double beta2,
                        double eps, double gradClip) implements Serializable {

  public static ModelSpec of(String baseModel, PeftClassifier m, JobConfig.Train t) {
    LoraConfig l = m.lora();
    return new ModelSpec(baseModel, m.method().key(), l == null ? 0 : l.r(), l == null ? 0 : l.alpha(),
        l == null ? 0 : l.dropout(), l == null ? new ArrayList<>() : new ArrayList<>(l.targetModules()),
        l != null && l.useRslora(), m.model().numLabels(), m.model().pooling().name(), t.seed(), t.optimizer(),
        t.weightDecay(), t.momentum(), t.beta1(), t.beta2(), t.eps(), t.gradClip());
  }

  /** A fresh model on this JVM's cached base; {@code seed} only matters for dropout masks. */
  public PeftClassifier build(long seed) throws IOException {
    BaseModel base = BaseModel.load(baseModel);
    Method m = Method.parse(method);
    LoraConfig lora = m == Method.LORA
        ? new LoraConfig(loraR, loraAlpha, loraDropout, List.copyOf(loraTargets), loraRslora, "none", false) : null;
    return PeftClassifier.create(m, lora, base.config(), base.weights(), numLabels, Pooling.Mode.valueOf(pooling),
        DataType.FLOAT, seed);
  }

  /** Dropout draws random masks: then every task needs a model seeded by (step, partition) to repeat exactly. */
  public boolean stochastic() { return loraDropout > 0; }

  public Optimizer newOptimizer(PeftClassifier model) {
    return Optimizer.create(optimizer, Math.max(1, model.params().size()), model.decayMask(), weightDecay, momentum,
        beta1, beta2, eps);
  }
}
