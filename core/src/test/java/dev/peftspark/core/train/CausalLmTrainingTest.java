package dev.peftspark.core.train;

import dev.peftspark.core.model.Gpt2Config;
import dev.peftspark.core.model.Gpt2Model;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.prompt.PromptConfig;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Causal LMs through the {@link dev.peftspark.core.peft.PeftModel} path of {@link Trainer}: a learnable synthetic
 * language (each token is the previous one plus a per-row stride, mod the vocabulary), every method, and the
 * token-weighted mean loss that makes gradient accumulation equal one big batch.
 */
class CausalLmTrainingTest {
  static final int VOCAB = 29;

  static LlamaConfig llama(boolean tied) {
    return new LlamaConfig("llama", VOCAB, 16, 32, 2, 4, 2, 4, 64, 1e-6, 10000.0, null, tied, false, false, false,
        0, 0.3);
  }

  static Gpt2Config gpt2() { return new Gpt2Config(VOCAB, 64, 16, 2, 2, 32, 1e-5, true, 0.3); }

  static PeftCausalLm.Base llamaBase(LlamaConfig c, DataType dtype) {
    var w = LlamaModel.randomWeights(c, dtype, 7);
    return trainable -> LlamaModel.fromWeights(c, w, dtype, trainable);
  }

  /**
   * Rows of varying length (padding after), labels -100 on a varying prompt prefix, so that rows carry different
   * numbers of target tokens; {@code packed} puts two documents into some rows.
   */
  static List<LmBatch> data(int n, int batch, int seq, long seed, boolean packed) {
    SplittableRandom rng = new SplittableRandom(seed);
    List<LmBatch> out = new ArrayList<>();
    for (int s = 0; s < n; s += batch) {
      int b = Math.min(batch, n - s);
      int[][] ids = new int[b][seq], mask = new int[b][seq], labels = new int[b][seq];
      int real = 0;
      for (int i = 0; i < b; i++) {
        int len = 4 + rng.nextInt(seq - 3), prompt = rng.nextInt(3);
        int split = packed && len > 8 && rng.nextBoolean() ? len / 2 : len;
        int stride = 1 + rng.nextInt(2), tok = rng.nextInt(VOCAB);
        for (int t = 0; t < len; t++) {
          if (t == split) { tok = rng.nextInt(VOCAB); stride = 1 + rng.nextInt(2); }
          ids[i][t] = tok;
          mask[i][t] = t < split ? 1 : 2;
          labels[i][t] = t < prompt ? -100 : tok;
          tok = (tok + stride) % VOCAB;
        }
        for (int t = len; t < seq; t++) labels[i][t] = -100;
        real += len;
      }
      out.add(new LmBatch(ids, mask, labels, real));
    }
    return out;
  }

  static LoraConfig lora(List<String> targets) {
    return new LoraConfig(4, 8, 0.0, targets, false, "none", false);
  }

  static double trainAndEval(PeftCausalLm m, int epochs, double lr) {
    List<LmBatch> batches = data(64, 8, 12, 1, true);
    new Trainer<>(m, TrainerTest.train(epochs, 8, 1, lr, 0), batches.size()).fit(e -> batches, new TrainListener() {});
    return m.evaluate(data(64, 8, 12, 2, false)).loss();
  }

  private static void assertLearns(PeftCausalLm m, double lr, double factor) {
    double before = m.evaluate(data(64, 8, 12, 2, false)).loss();
    double after = trainAndEval(m, 6, lr);
    assertTrue(after < factor * before, m.method() + ": held-out loss " + before + " -> " + after);
  }

  @Test
  void loraOnLlamaLearns() {
    var m = PeftCausalLm.create(Method.LORA, lora(List.of("all-linear")), null, llamaBase(llama(true), DataType.FLOAT),
        DataType.FLOAT, 3);
    assertLearns(m, 3e-2, 0.6);
    assertTrue(m.params().names().stream().noneMatch(n -> n.startsWith("lm_head")), "all-linear leaves lm_head alone");
  }

  @Test
  void loraOnGpt2CAttnLearns() {
    Gpt2Config c = gpt2();
    var w = Gpt2Model.randomWeights(c, DataType.FLOAT, 5);
    var m = PeftCausalLm.create(Method.LORA, lora(List.of("c_attn", "c_fc")), null,
        t -> Gpt2Model.fromWeights(c, w, DataType.FLOAT, t), DataType.FLOAT, 3);
    // c_attn: A [4, 16] + B [48, 4]; c_fc: A [4, 16] + B [32, 4]; per layer, 2 layers
    assertEquals(2 * (4 * 16 + 48 * 4 + 4 * 16 + 32 * 4), m.trainableCount());
    assertLearns(m, 3e-2, 0.85);
  }

  @Test
  void loraOnLmHeadTiedAndUntied() {
    for (boolean tied : new boolean[] {true, false}) {
      var m = PeftCausalLm.create(Method.LORA, lora(List.of("q_proj", "lm_head")), null,
          llamaBase(llama(tied), DataType.FLOAT), DataType.FLOAT, 3);
      assertTrue(m.params().names().containsAll(List.of("lm_head.lora_A.weight", "lm_head.lora_B.weight")),
          m.params().names().toString());
      assertEquals(2 * (4 * 16 + 16 * 4) + 4 * 16 + VOCAB * 4, m.trainableCount());
      INDArray b = m.params().get("lm_head.lora_B.weight").value().dup();
      trainAndEval(m, 1, 1e-2);
      assertTrue(m.params().get("lm_head.lora_B.weight").value().sub(b).norm2Number().doubleValue() > 0,
          "lm_head's LoRA got a gradient (tied=" + tied + ")");
    }
  }

  @Test
  void everyMethodLearns() {
    var base = llamaBase(llama(false), DataType.FLOAT);
    var full = PeftCausalLm.create(Method.FULL, null, null, base, DataType.FLOAT, 3);
    assertEquals(full.totalCount(), full.trainableCount(), "full trains every tensor");
    assertLearns(full, 1e-2, 0.4);
    assertLearns(PeftCausalLm.create(Method.IA3, null, Ia3Config.llamaDefaults(), base, DataType.FLOAT, 3), 5e-2, 0.9);
    assertLearns(PeftCausalLm.create(Method.QLORA, lora(List.of("all-linear")), null, base, DataType.FLOAT, 3), 3e-2, 0.6);
    var dora = new LoraConfig(4, 8, 0.0, List.of("all-linear"), false, "none", false, true);
    assertLearns(PeftCausalLm.create(Method.LORA, dora, null, base, DataType.FLOAT, 3), 3e-2, 0.6);
  }

  /**
   * Prompt learning through the Trainer on packed rows: the held-out loss drops with the base frozen (a few virtual
   * tokens steer a random model less than adapters in every layer do, hence the milder factors; lr 0.3 is the
   * usual order for prompt tuning).
   */
  @Test
  void promptAndPrefixTuningLearn() {
    var base = llamaBase(llama(false), DataType.FLOAT);
    var prompt = PeftCausalLm.create(Method.PROMPT_TUNING, null, null, PromptConfig.random(4), base, DataType.FLOAT, 3);
    assertEquals(4 * 16, prompt.trainableCount());
    assertLearns(prompt, 0.3, 0.92);
    var prefix = PeftCausalLm.create(Method.PREFIX_TUNING, null, null, PromptConfig.random(4), base, DataType.FLOAT, 3);
    assertEquals(4 * 2 * 2 * 2 * 4, prefix.trainableCount());
    assertLearns(prefix, 0.3, 0.88);
    var gpt = gpt2();
    var w = Gpt2Model.randomWeights(gpt, DataType.FLOAT, 5);
    assertLearns(PeftCausalLm.create(Method.PREFIX_TUNING, null, null, PromptConfig.random(4),
        t -> Gpt2Model.fromWeights(gpt, w, DataType.FLOAT, t), DataType.FLOAT, 3), 0.3, 0.95);
  }

  @Test
  void headMethodIsRefused() {
    var e = assertThrows(IllegalArgumentException.class, () ->
        PeftCausalLm.create(Method.HEAD, null, null, llamaBase(llama(true), DataType.FLOAT), DataType.FLOAT, 3));
    assertTrue(e.getMessage().contains("causal LM"), e.getMessage());
  }

  /** One step over 12 rows in 1, 3 or 4 micro-batches (rows of different target counts): same loss and gradient. */
  @Test
  void gradientAccumulationEqualsOneBigBatch() {
    var base = llamaBase(llama(true), DataType.DOUBLE);
    LmBatch batch = data(12, 12, 10, 9, true).get(0);
    double[] losses = new double[3];
    INDArray[] grads = new INDArray[3];
    int[] micro = {12, 4, 3};
    for (int k = 0; k < 3; k++) {
      var m = PeftCausalLm.create(Method.LORA, lora(List.of("q_proj", "v_proj", "lm_head")), null, base,
          DataType.DOUBLE, 3);
      m.params().get("lm_head.lora_B.weight").value().assign(0.05);   // B = 0 would leave A's gradient zero
      m.params().zeroGrad();
      losses[k] = Trainer.accumulate(m, batch, batch.weight(), micro[k]);
      grads[k] = m.params().grads().dup();
      if (k == 0) {   // the loss is the mean over all target tokens of the batch
        var r = m.model().evaluate(batch.ids(), batch.mask(), batch.labels());
        assertEquals(r.tokens(), batch.weight());
        assertEquals(r.lossSum() / r.tokens(), losses[0], 1e-12);
      }
    }
    assertTrue(grads[0].norm2Number().doubleValue() > 1e-3);
    for (int k = 1; k < 3; k++) {
      assertEquals(losses[0], losses[k], 1e-12);
      double diff = grads[0].sub(grads[k]).amaxNumber().doubleValue();
      assertTrue(diff <= 1e-6 * Math.max(1, grads[0].amaxNumber().doubleValue()), "micro " + micro[k] + ": " + diff);
    }
  }

  /** The batch weight counts exactly the targets the model takes loss on (segment ends, -100, padding). */
  @Test
  void weightCountsTargetTokens() {
    int[][] ids = {{1, 2, 3, 4, 5, 6}}, mask = {{1, 1, 1, 2, 2, 0}}, labels = {{-100, 2, 3, 4, -100, 6}};
    // targets: t=0 -> 2, t=1 -> 3; t=2 ends segment 1; t=3 -> -100; t=4 -> padding
    assertEquals(2, new LmBatch(ids, mask, labels, 5).weight());
    assertEquals(3, new LmBatch(ids, mask, null, 5).weight());
  }
}
