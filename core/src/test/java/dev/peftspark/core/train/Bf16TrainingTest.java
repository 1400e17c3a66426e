package dev.peftspark.core.train;

import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import dev.peftspark.core.nn.Gemm;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.lora.LoraConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Five LoRA steps of a small FLOAT LLaMA with bf16 products against the same steps in FP32. The first loss (same
 * parameters, forward only) carries bf16's operand rounding alone: 2^-9 ≈ 2e-3 relative per operand, partly
 * averaging out over the sums (measured 1.0e-3; bound 3e-3). Later losses also carry AdamW's response to the
 * perturbed gradients, which grows step by step (measured 2.7e-3 by step 5 at lr 5e-3; bound 1e-2). They must
 * still differ (the bf16 path ran) and fall (bf16 trains).
 */
class Bf16TrainingTest {
  private final int blasThreads = Nd4j.factory().blas().getMaxThreads();

  @AfterEach
  void restore() {
    Nd4j.factory().blas().setMaxThreads(blasThreads);
    Gemm.setPrecision("fp32");
  }

  /** Big enough that the projections and the head pass Gemm's bf16 threshold (256 rows × 128 × 128 and up). */
  private static final LlamaConfig CONFIG = new LlamaConfig("llama", 512, 128, 256, 2, 4, 4, 32, 64, 1e-6, 10000.0,
      null, false, false, false, false, 0, 0.3);

  private static double[] fiveSteps(String precision, Map<String, INDArray> weights, LmBatch batch) {
    Gemm.setPrecision(precision);
    LoraConfig lora = new LoraConfig(8, 16, 0.0, List.of("q_proj", "v_proj", "lm_head"), false, "none", false);
    PeftCausalLm m = PeftCausalLm.create(Method.LORA, lora, null, null,
        t -> LlamaModel.fromWeights(CONFIG, weights, DataType.FLOAT, t), DataType.FLOAT, 3);
    Trainer<LmBatch> trainer = new Trainer<>(m, TrainerTest.train(1, 4, 1, 5e-3, 0), 5);
    double[] losses = new double[5];
    for (int s = 0; s < 5; s++) losses[s] = trainer.step(batch, s);
    return losses;
  }

  @Test
  void bf16LossesFollowFp32AndStillFall() {
    Nd4j.factory().blas().setMaxThreads(2);
    Map<String, INDArray> w = LlamaModel.randomWeights(CONFIG, DataType.FLOAT, 7);
    LmBatch batch = CausalLmTrainingTest.data(4, 4, 64, 3, true).get(0);
    double[] fp32 = fiveSteps("fp32", w, batch), bf16 = fiveSteps("bf16", w, batch);
    double maxRel = 0;
    for (int s = 0; s < 5; s++) maxRel = Math.max(maxRel, Math.abs(bf16[s] - fp32[s]) / Math.abs(fp32[s]));
    String both = "fp32 " + java.util.Arrays.toString(fp32) + ", bf16 " + java.util.Arrays.toString(bf16);
    assertTrue(Math.abs(bf16[0] - fp32[0]) <= 3e-3 * Math.abs(fp32[0]), "first losses differ beyond rounding: " + both);
    assertTrue(maxRel <= 1e-2, "losses differ by " + maxRel + " relative: " + both);
    assertTrue(maxRel >= 1e-6, "bf16 losses equal fp32's, so the bf16 path did not run: " + both);
    assertTrue(bf16[4] < bf16[0] && fp32[4] < fp32[0], "the loss falls: " + both);
  }
}
