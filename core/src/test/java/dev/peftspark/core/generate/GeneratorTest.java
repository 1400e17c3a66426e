package dev.peftspark.core.generate;

import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.Gpt2Config;
import dev.peftspark.core.model.Gpt2Model;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import dev.peftspark.core.model.TinyLlama;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.peft.ia3.Ia3;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.Lora;
import dev.peftspark.core.peft.lora.LoraConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** KV-cached decoding against full recomputation, and the sampler's rules. */
class GeneratorTest {
  private static final int[] SEQ = {1, 7, 9, 3, 2, 5, 4, 4, 11, 28, 6, 0};

  static LlamaModel llama(String variant) {
    LlamaConfig t = TinyLlama.config(variant.equals("tied"), variant.equals("qwen2"));   // 4 heads on 2 kv heads
    if (variant.equals("mistral"))   // a window of 3 keys, shorter than the sequence
      t = new LlamaConfig("mistral", t.vocabSize(), t.hiddenSize(), t.intermediateSize(), t.numHiddenLayers(),
          t.numAttentionHeads(), t.numKeyValueHeads(), t.headDim(), t.maxPositionEmbeddings(), t.rmsNormEps(),
          t.ropeTheta(), null, false, false, false, false, 3, t.initializerRange());
    return LlamaModel.fromWeights(t, TinyLlama.weights(t, DataType.FLOAT, 5), DataType.FLOAT, false);
  }

  static Gpt2Model gpt2(boolean tied) {
    return Gpt2Model.random(new Gpt2Config(29, 16, 16, 2, 4, 24, 1e-5, tied, 0.3), DataType.FLOAT, 5, false);
  }

  /** Logits of the whole sequence at once (the training path), [T, V]. */
  static INDArray full(CausalLm m, int[] ids) {
    int[][] mask = {new int[ids.length]};
    Arrays.fill(mask[0], 1);
    return m.logits(new int[][] {ids}, mask);
  }

  /** Prefill {@code prefill} tokens, then one token per step; the logits of every position stacked, [T, V]. */
  static INDArray cached(CausalLm m, int[] ids, int prefill) {
    KvCache cache = m.newCache(ids.length);
    INDArray out = Nd4j.create(m.dtype(), ids.length, m.vocabSize());
    INDArray first = m.logitsCached(Arrays.copyOf(ids, prefill), cache);
    out.get(NDArrayIndex.interval(0, prefill), NDArrayIndex.all()).assign(first);
    for (int t = prefill; t < ids.length; t++) {
      assertEquals(t, cache.length());
      out.getRow(t).assign(m.logitsCached(new int[] {ids[t]}, cache).reshape(m.vocabSize()));
    }
    return out;
  }

  static double maxDiff(INDArray a, INDArray b) { return a.sub(b).amaxNumber().doubleValue(); }

  static void assertCachedEqualsFull(CausalLm m, String what) {
    INDArray full = full(m, SEQ);
    assertTrue(full.amaxNumber().doubleValue() > 0.1, "logits are not trivially small");
    for (int prefill : new int[] {1, 5, SEQ.length}) {
      double d = maxDiff(full, cached(m, SEQ, prefill));
      assertTrue(d <= 1e-5, what + ", prefill " + prefill + ": cached logits differ from the full forward by " + d);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"tied", "untied", "qwen2", "mistral"})
  void llamaCachedLogitsEqualTheFullForwardAtEveryPosition(String variant) {
    assertCachedEqualsFull(llama(variant), variant);
  }

  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void gpt2CachedLogitsEqualTheFullForwardAtEveryPosition(boolean tied) {
    assertCachedEqualsFull(gpt2(tied), "gpt2 tied=" + tied);
  }

  @Test
  void adaptersAreUsedByTheCachedPath() {
    LlamaModel lora = llama("untied");
    INDArray before = full(lora, SEQ);
    perturb(Lora.inject(lora, new LoraConfig(2, 4, 0, List.of("q_proj", "k_proj", "v_proj", "down_proj"), false, "none", false), DataType.FLOAT, 1));
    assertTrue(maxDiff(before, full(lora, SEQ)) > 1e-3, "the adapter changes the logits");
    assertCachedEqualsFull(lora, "lora");

    LlamaModel dora = llama("tied");
    perturb(Lora.inject(dora, new LoraConfig(2, 4, 0, List.of("k_proj", "o_proj"), false, "none", false, true), DataType.FLOAT, 1));
    assertCachedEqualsFull(dora, "dora");

    Gpt2Model ia3 = gpt2(true);
    perturb(Ia3.inject(ia3, new Ia3Config(List.of("c_attn", "c_fc"), List.of("c_fc")), DataType.FLOAT));
    assertCachedEqualsFull(ia3, "ia3");
    Gpt2Model gptLora = gpt2(false);
    perturb(Lora.inject(gptLora, new LoraConfig(2, 4, 0, List.of("c_attn", "c_proj"), false, "none", false), DataType.FLOAT, 1));
    assertCachedEqualsFull(gptLora, "gpt2 lora");
  }

  /** Adapters start as the identity; move them so that they matter. */
  private static void perturb(List<Param> params) {
    SplittableRandom rng = new SplittableRandom(3);
    for (Param p : params) {
      double[] noise = new double[(int) p.length()];
      for (int i = 0; i < noise.length; i++) noise[i] = (rng.nextDouble() - 0.5) * 0.6;
      p.value().addi(Nd4j.createFromArray(noise).reshape(p.shape).castTo(p.value().dataType()));
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama", "gpt2"})
  void greedyTokensAreTheArgmaxOfAFullRecomputationEachStep(String arch) {
    CausalLm m = arch.equals("llama") ? llama("untied") : gpt2(true);
    int[] prompt = {3, 1, 4, 1, 5};
    Generator.Result r = Generator.generate(m, prompt, Generator.Settings.greedy(9, -1));
    assertEquals(9, r.tokens().length);
    assertEquals(Generator.Stop.MAX_NEW_TOKENS, r.stop());
    int[] seq = prompt;
    for (int next : r.tokens()) {
      INDArray logits = full(m, seq);
      double[] last = logits.getRow(seq.length - 1).castTo(DataType.DOUBLE).toDoubleVector();
      assertEquals(Sampler.argmax(last), next, "step " + (seq.length - prompt.length));
      seq = Arrays.copyOf(seq, seq.length + 1);
      seq[seq.length - 1] = next;
    }
    assertTrue(Arrays.stream(r.tokens()).distinct().count() > 1, "not one token repeated: " + Arrays.toString(r.tokens()));
  }

  @Test
  void samplingIsSeededAndTopPNearZeroIsGreedy() {
    LlamaModel m = llama("untied");
    int[] prompt = {3, 1, 4};
    int[] a = Generator.generate(m, prompt, new Generator.Settings(20, 1.5, 1.0, 42, -1)).tokens();
    int[] b = Generator.generate(m, prompt, new Generator.Settings(20, 1.5, 1.0, 42, -1)).tokens();
    int[] c = Generator.generate(m, prompt, new Generator.Settings(20, 1.5, 1.0, 43, -1)).tokens();
    assertArrayEquals(a, b, "same seed, same sample");
    assertFalse(Arrays.equals(a, c), "another seed, another sample");
    int[] greedy = Generator.generate(m, prompt, Generator.Settings.greedy(20, -1)).tokens();
    assertNotEquals(Arrays.toString(greedy), Arrays.toString(a), "sampling at temperature 1.5 is not greedy");
    assertArrayEquals(greedy, Generator.generate(m, prompt, new Generator.Settings(20, 1.5, 1e-9, 7, -1)).tokens());
  }

  @Test
  void samplerFollowsTheNucleusDistribution() {
    // probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1
    INDArray logits = Nd4j.createFromArray(Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05));
    int[] all = counts(new Sampler(1.0, 1.0, 1), logits, 20000);
    assertEquals(0.5, all[0] / 20000.0, 0.015);
    assertEquals(0.3, all[1] / 20000.0, 0.015);
    assertEquals(0.15, all[2] / 20000.0, 0.015);
    assertEquals(0.05, all[3] / 20000.0, 0.01);
    // top_p 0.7: 0.5 < 0.7 <= 0.8, so the nucleus is {0, 1}, renormalised to 5/8, 3/8
    int[] nucleus = counts(new Sampler(1.0, 0.7, 1), logits, 20000);
    assertEquals(0, nucleus[2] + nucleus[3]);
    assertEquals(0.625, nucleus[0] / 20000.0, 0.015);
    // temperature 0.5 squares the odds: 25 : 9 : 2.25 : 0.25
    int[] cold = counts(new Sampler(0.5, 1.0, 1), logits, 20000);
    assertEquals(25 / 36.5, cold[0] / 20000.0, 0.015);
    assertEquals(0, new Sampler(0, 1, 1).next(logits));
    assertThrows(IllegalArgumentException.class, () -> new Sampler(-1, 1, 1));
    assertThrows(IllegalArgumentException.class, () -> new Sampler(1, 0, 1));
  }

  private static int[] counts(Sampler s, INDArray logits, int n) {
    int[] c = new int[(int) logits.length()];
    for (int i = 0; i < n; i++) c[s.next(logits)]++;
    return c;
  }

  @Test
  void stopsAtEosAndAtTheLastPositionAndRefusesLongPrompts() {
    Gpt2Model m = gpt2(true);   // 16 positions
    int[] prompt = {3, 1, 4};
    int first = Generator.generate(m, prompt, Generator.Settings.greedy(1, -1)).tokens()[0];
    Generator.Result eos = Generator.generate(m, prompt, Generator.Settings.greedy(5, first));
    assertEquals(Generator.Stop.EOS, eos.stop());
    assertEquals(0, eos.tokens().length);
    Generator.Result full = Generator.generate(m, prompt, Generator.Settings.greedy(100, -1));
    assertEquals(Generator.Stop.MAX_POSITIONS, full.stop());
    assertEquals(16 - 3 + 1, full.tokens().length, "the last position's logits still yield a token");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Generator.generate(m, new int[17], Generator.Settings.greedy(1, -1)));
    assertEquals("the prompt has 17 tokens, more than the model's 16 positions", e.getMessage());
  }
}
