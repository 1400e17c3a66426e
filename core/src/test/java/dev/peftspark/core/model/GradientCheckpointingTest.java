package dev.peftspark.core.model;

import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.peft.lora.Lora;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.prompt.PromptConfig;
import dev.peftspark.core.peft.qlora.Qlora;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Gradient checkpointing changes where activations live, not what is computed: the same loss and the same
 * gradients (LoRA with dropout, whose masks the recompute must repeat; full fine-tuning down to the embedding;
 * QLoRA in float inside a step workspace; prompt and prefix tuning, whose virtual rows and keys the recompute must
 * see again), for LLaMA and GPT-2, over two steps.
 */
class GradientCheckpointingTest {
  private static final int[][] IDS = {{1, 7, 9, 3, 2, 5}, {0, 0, 4, 11, 28, 6}, {1, 5, 2, 1, 8, 8}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1}, {1, 1, 1, 2, 2, 2}};
  private static final int[][] LABELS = {{1, 7, 9, 3, 2, 5}, {-100, -100, 4, 11, 28, 6}, {1, 5, -100, 1, 8, -100}};

  /** Two training steps (gradients accumulate) without and with checkpointing; losses and gradients compared. */
  private static void sameLossAndGradients(Function<Boolean, CausalLm> build, DataType dtype, boolean workspace, double tol) {
    CausalLm plain = build.apply(false), ckpt = build.apply(true);
    ckpt.setGradientCheckpointing(true);
    assertTrue(ckpt.gradientCheckpointing());
    ParamSet pp = new ParamSet(plain.trainableParams(), dtype), pc = new ParamSet(ckpt.trainableParams(), dtype);
    assertEquals(pp.names(), pc.names());
    pp.zeroGrad();
    pc.zeroGrad();
    for (int step = 0; step < 2; step++) {
      double lp = plain.trainStep(IDS, MASK, LABELS, 1.0), lc;
      if (workspace) {
        try (var ws = Nd4jSetup.stepWorkspace()) {
          lc = ckpt.trainStep(IDS, MASK, LABELS, 1.0);
        }
      } else {
        lc = ckpt.trainStep(IDS, MASK, LABELS, 1.0);
      }
      assertEquals(lp, lc, tol * Math.abs(lp), "loss of step " + step);
      double scale = pp.grads().amaxNumber().doubleValue();
      assertTrue(scale > 1e-3, "gradients reach the adapters: " + scale);
      assertEquals(0, pp.grads().sub(pc.grads()).amaxNumber().doubleValue(), tol * scale, "gradients after step " + step);
    }
    assertEquals(plain.evaluate(IDS, MASK, LABELS).lossSum(), ckpt.evaluate(IDS, MASK, LABELS).lossSum(), 1e-9);
  }

  private static List<Param> loraWithB(CausalLm m, List<String> targets, double dropout, DataType dtype) {
    List<Param> adapters = Lora.inject(m, new LoraConfig(3, 6, dropout, targets, false, "none", false), dtype, 11);
    SplittableRandom rng = new SplittableRandom(5);
    for (Param p : adapters) if (p.name.contains("lora_B")) p.value().assign(GradCheck.randn(rng, p.shape).muli(0.3).castTo(dtype));
    return adapters;
  }

  @ParameterizedTest
  @ValueSource(doubles = {0.0, 0.3})
  void llamaLoraWithDropout(double dropout) {
    LlamaConfig c = TinyLlama.config(false, true);
    sameLossAndGradients(on -> {
      LlamaModel m = LlamaModel.fromWeights(c, TinyLlama.weights(c, DataType.DOUBLE, 3), DataType.DOUBLE, false);
      m.setLossChunkRows(5);
      loraWithB(m, List.of("q_proj", "v_proj", "down_proj"), dropout, DataType.DOUBLE);
      return m;
    }, DataType.DOUBLE, false, 1e-12);
  }

  @Test
  void llamaFullFineTuningDownToTheEmbedding() {
    LlamaConfig c = TinyLlama.config(true, false);
    sameLossAndGradients(on -> LlamaModel.fromWeights(c, TinyLlama.weights(c, DataType.DOUBLE, 1), DataType.DOUBLE, true),
        DataType.DOUBLE, false, 1e-12);
  }

  @Test
  void llamaQloraInFloatInsideAStepWorkspace() {
    LlamaConfig c = TinyLlama.config(false, false);
    sameLossAndGradients(on -> {
      LlamaModel m = LlamaModel.fromWeights(c, TinyLlama.weights(c, DataType.FLOAT, 4), DataType.FLOAT, false, l -> l, DataType.BFLOAT16);
      Qlora.quantizeBase(m, DataType.FLOAT);
      loraWithB(m, List.of("q_proj", "v_proj"), 0.1, DataType.FLOAT);
      return m;
    }, DataType.FLOAT, true, 1e-6);
  }

  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void gpt2LoraAndFull(boolean full) {
    Gpt2Config c = Gpt2GradientTest.tiny();
    sameLossAndGradients(on -> {
      Gpt2Model m = Gpt2Model.fromWeights(c, Gpt2GradientTest.weights(c, 2), DataType.DOUBLE, full);
      if (!full) loraWithB(m, List.of("c_attn", "mlp.c_fc"), 0.2, DataType.DOUBLE);
      return m;
    }, DataType.DOUBLE, false, 1e-12);
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama:prompt_tuning", "llama:prefix_tuning", "gpt2:prompt_tuning", "gpt2:prefix_tuning"})
  void promptAndPrefixTuning(String archAndMethod) {
    String arch = archAndMethod.split(":")[0];
    Method method = Method.parse(archAndMethod.split(":")[1]);
    sameLossAndGradients(on -> {
      CausalLm m = arch.equals("llama")
          ? LlamaModel.fromWeights(TinyLlama.config(false, true), TinyLlama.weights(TinyLlama.config(false, true), DataType.DOUBLE, 3),
              DataType.DOUBLE, false)
          : Gpt2Model.fromWeights(Gpt2GradientTest.tiny(), Gpt2GradientTest.weights(Gpt2GradientTest.tiny(), 2), DataType.DOUBLE, false);
      return PeftCausalLm.create(method, null, null, PromptConfig.random(3), t -> m, DataType.DOUBLE, 4).model();
    }, DataType.DOUBLE, false, 1e-12);
  }
}
