package dev.peftspark.core.peft.prompt;

import dev.peftspark.core.generate.KvCache;
import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.Gpt2Config;
import dev.peftspark.core.model.Gpt2Model;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import dev.peftspark.core.model.TinyLlama;
import dev.peftspark.core.nn.CacheAccess;
import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prompt and prefix tuning on causal LMs (LLaMA with grouped-query attention, Mistral's sliding window, GPT-2):
 * gradients against finite differences, semantics against the base model fed the same tokens, and KV-cached
 * decoding against the full forward.
 */
class CausalPromptLearningTest {
  // row 1 is left-padded, row 2 packs two documents and ignores some labels
  static final int[][] IDS = {{1, 7, 9, 3, 2, 5}, {0, 0, 4, 11, 28, 6}, {1, 5, 2, 1, 8, 8}};
  static final int[][] MASK = {{1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1}, {1, 1, 1, 2, 2, 2}};
  static final int[][] LABELS = {{1, 7, 9, 3, 2, 5}, {-100, -100, 4, 11, 28, 6}, {1, 5, -100, 1, 8, -100}};
  static final int NV = 3;

  @BeforeAll
  static void doublePrecision() {
    Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
  }

  static LlamaConfig mistral(int window) {
    LlamaConfig t = TinyLlama.config(false, false);
    return new LlamaConfig("mistral", t.vocabSize(), t.hiddenSize(), t.intermediateSize(), t.numHiddenLayers(),
        t.numAttentionHeads(), t.numKeyValueHeads(), t.headDim(), t.maxPositionEmbeddings(), t.rmsNormEps(),
        t.ropeTheta(), null, false, false, false, false, window, t.initializerRange());
  }

  static CausalLm base(String arch, DataType dtype) {
    return switch (arch) {
      case "llama" -> LlamaModel.fromWeights(TinyLlama.config(false, true), TinyLlama.weights(TinyLlama.config(false, true), dtype, 1), dtype, false);
      case "mistral" -> LlamaModel.fromWeights(mistral(4), TinyLlama.weights(mistral(4), dtype, 2), dtype, false);
      case "gpt2" -> Gpt2Model.random(new Gpt2Config(29, 16, 16, 2, 4, 24, 1e-5, true, 0.3), dtype, 5, false);
      default -> throw new IllegalArgumentException(arch);
    };
  }

  static PeftCausalLm adapted(String arch, Method method, PromptConfig cfg, DataType dtype) {
    CausalLm m = base(arch, dtype);
    return PeftCausalLm.create(method, null, null, cfg, t -> m, dtype, 4);
  }

  private static double loss(CausalLm m) { return m.evaluate(IDS, MASK, LABELS).mean(); }

  @ParameterizedTest
  @ValueSource(strings = {"llama", "mistral", "gpt2"})
  void promptTuningGradientMatchesFiniteDifferences(String arch) {
    PeftCausalLm p = adapted(arch, Method.PROMPT_TUNING, PromptConfig.random(NV), DataType.DOUBLE);
    assertEquals(List.of("prompt_embeddings"), p.params().names());
    assertArrayEquals(new long[] {NV, 16}, p.params().get("prompt_embeddings").shape);
    p.model().setLossChunkRows(5);   // chunks that cut across examples and virtual rows
    p.params().zeroGrad();
    double mean = p.trainStep(new dev.peftspark.core.train.LmBatch(IDS, MASK, LABELS, 0), 1.0);
    assertEquals(loss(p.model()), mean, 1e-12);
    GradCheck.checkParams(arch + " prompt", p.model().trainableParams(), () -> loss(p.model()), 48);
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama", "mistral", "gpt2"})
  void prefixTuningGradientMatchesFiniteDifferences(String arch) {
    PeftCausalLm p = adapted(arch, Method.PREFIX_TUNING, PromptConfig.random(NV), DataType.DOUBLE);
    // LLaMA: 2 layers × (k, v) × 2 kv heads × 4; GPT-2: 2 layers × (k, v) × 16 (no GQA)
    long width = arch.equals("gpt2") ? 2 * 2 * 16 : 2 * 2 * 2 * 4;
    assertArrayEquals(new long[] {NV, width}, p.params().get("prompt_embeddings").shape);
    p.params().values().muli(0.5);   // N(0, 1) keys saturate a few softmax rows; keep every entry well conditioned
    p.params().zeroGrad();
    double mean = p.trainStep(new dev.peftspark.core.train.LmBatch(IDS, MASK, LABELS, 0), 1.0);
    assertEquals(loss(p.model()), mean, 1e-12);
    GradCheck.checkParams(arch + " prefix", p.model().trainableParams(), () -> loss(p.model()), 64);
  }

  /**
   * Prompt tuning initialised from tokens is the base model reading those tokens first: virtual tokens take
   * positions 0..nv-1 (RoPE and GPT-2's learned positions count them), and real tokens attend to them causally.
   */
  @ParameterizedTest
  @ValueSource(strings = {"llama", "mistral", "gpt2"})
  void promptFromTokensEqualsTheBaseReadingThemFirst(String arch) {
    int[] virtual = {4, 17, 2};
    PeftCausalLm p = adapted(arch, Method.PROMPT_TUNING, new PromptConfig(NV, Arrays.stream(virtual).boxed().toList(), "x"),
        DataType.DOUBLE);
    CausalLm plain = base(arch, DataType.DOUBLE);
    int[] doc = {1, 7, 9, 3, 2};
    INDArray withPrompt = p.model().logits(new int[][] {doc}, new int[][] {ones(doc.length)});
    int[] joined = concat(virtual, doc);
    INDArray reference = plain.logits(new int[][] {joined}, new int[][] {ones(joined.length)});
    assertEquals(0, withPrompt.sub(reference).amaxNumber().doubleValue(), 1e-10);
  }

  /**
   * A prefix equal to the base model's cached keys and values of some tokens is the base model reading those
   * tokens first: PEFT's column layout {@code ((2·layer + kv)·kvh + head)·hd + d}, keys used as cached (after RoPE),
   * and the real tokens at positions nv, nv+1, ...
   */
  @ParameterizedTest
  @ValueSource(strings = {"llama", "gpt2"})
  void prefixFromCachedTokensEqualsTheBaseReadingThemFirst(String arch) {
    int[] virtual = {4, 17, 2};
    CausalLm plain = base(arch, DataType.DOUBLE);
    KvCache cache = plain.newCache(virtual.length);
    plain.hiddenCached(virtual, cache);
    PeftCausalLm p = adapted(arch, Method.PREFIX_TUNING, PromptConfig.random(NV), DataType.DOUBLE);
    INDArray prefix = p.params().get("prompt_embeddings").value();
    assertEquals(NV, cache.length());
    long kvh = CacheAccess.keys(cache.layer(0)).size(0), hd = CacheAccess.keys(cache.layer(0)).size(2);
    for (int layer = 0; layer < cache.layers(); layer++) {
      for (int kv = 0; kv < 2; kv++) {
        INDArray c = kv == 0 ? CacheAccess.keys(cache.layer(layer)) : CacheAccess.values(cache.layer(layer));   // [kvh, nv, hd]
        for (int head = 0; head < kvh; head++)
          for (int t = 0; t < NV; t++)
            for (int d = 0; d < hd; d++)
              prefix.putScalar(new long[] {t, ((2L * layer + kv) * kvh + head) * hd + d}, c.getDouble(head, t, d));
      }
    }
    int[] doc = {1, 7, 9, 3, 2};
    INDArray withPrefix = p.model().logits(new int[][] {doc}, new int[][] {ones(doc.length)});
    int[] joined = concat(virtual, doc);
    INDArray reference = plain.logits(new int[][] {joined}, new int[][] {ones(joined.length)});
    INDArray realRows = reference.get(NDArrayIndex.interval(NV, joined.length), NDArrayIndex.all());
    assertEquals(0, withPrefix.sub(realRows).amaxNumber().doubleValue(), 1e-10);
  }

  /** Packed documents and left padding give each document what it gets alone (virtual tokens shared by all). */
  @ParameterizedTest
  @ValueSource(strings = {"PROMPT_TUNING", "PREFIX_TUNING"})
  void packedAndPaddedDocumentsSeeWhatTheySeeAlone(String method) {
    Method m = Method.valueOf(method);
    PeftCausalLm p = adapted("llama", m, PromptConfig.random(NV), DataType.DOUBLE);
    p.params().values().muli(0.5);
    int off = m == Method.PROMPT_TUNING ? NV : 0;   // prompt tuning's rows include the virtual ones
    int rows = off + 6;
    INDArray packed = p.model().logits(new int[][] {{1, 5, 2, 1, 8, 8}}, new int[][] {{1, 1, 1, 2, 2, 2}});
    INDArray padded = p.model().logits(new int[][] {{0, 0, 0, 1, 8, 8}}, new int[][] {{0, 0, 0, 1, 1, 1}});
    INDArray alone = p.model().logits(new int[][] {{1, 8, 8}}, new int[][] {{1, 1, 1}});
    assertEquals(rows, packed.rows());
    INDArray second = packed.get(NDArrayIndex.interval(off + 3, rows), NDArrayIndex.all());
    INDArray aloneReal = alone.get(NDArrayIndex.interval(off, off + 3), NDArrayIndex.all());
    assertEquals(0, second.sub(aloneReal).amaxNumber().doubleValue(), 1e-10);
    assertEquals(0, padded.get(NDArrayIndex.interval(off + 3, rows), NDArrayIndex.all()).sub(aloneReal).amaxNumber().doubleValue(), 1e-10);
  }

  /** Prefill (virtual tokens enter the cache) then one token per step equals the full forward, in float. */
  @ParameterizedTest
  @ValueSource(strings = {"llama:PROMPT_TUNING", "llama:PREFIX_TUNING", "mistral:PROMPT_TUNING", "mistral:PREFIX_TUNING",
      "gpt2:PROMPT_TUNING", "gpt2:PREFIX_TUNING"})
  void cachedDecodingEqualsTheFullForward(String variant) {
    String arch = variant.split(":")[0];
    Method method = Method.valueOf(variant.split(":")[1]);
    PeftCausalLm p = adapted(arch, method, PromptConfig.random(NV), DataType.FLOAT);
    CausalLm m = p.model();
    int[] ids = {1, 7, 9, 3, 2, 5, 4, 4, 11, 6};
    INDArray full = m.logits(new int[][] {ids}, new int[][] {ones(ids.length)});
    int off = method == Method.PROMPT_TUNING ? NV : 0;
    assertEquals(off + ids.length, full.rows());
    KvCache cache = m.newCache(NV + ids.length);
    assertEquals(method == Method.PREFIX_TUNING ? NV : 0, cache.length(), "a prefix is in the cache from the start");
    int prefill = 4;
    INDArray first = m.logitsCached(Arrays.copyOf(ids, prefill), cache);
    assertEquals(prefill, first.rows(), "one row per real token");
    double worst = first.sub(full.get(NDArrayIndex.interval(off, off + prefill), NDArrayIndex.all())).amaxNumber().doubleValue();
    for (int t = prefill; t < ids.length; t++) {
      assertEquals(NV + t, cache.length());
      INDArray row = m.logitsCached(new int[] {ids[t]}, cache).reshape(m.vocabSize());
      worst = Math.max(worst, row.sub(full.getRow(off + t)).amaxNumber().doubleValue());
    }
    assertTrue(worst <= 1e-5, variant + ": cached vs full " + worst);
    assertThrows(IllegalArgumentException.class, () -> m.logitsCached(new int[] {1}, cache), "the cache is full");
  }

  /** The mask's bookkeeping: virtual rows first at positions 0..nv-1, real tokens from nv, virtual rows predict nothing. */
  @Test
  void maskPositionsAndTargets() {
    int[][] mask = {{0, 1, 1, 2, 2}}, labels = {{-100, 5, 6, 7, 8}};
    var prompt = dev.peftspark.core.nn.CausalMask.of(mask, 0, DataType.DOUBLE, 2, 0);
    assertArrayEquals(new int[] {0, 1, 0, 2, 3, 2, 3}, prompt.positions());
    assertArrayEquals(new int[] {-100, -100, -100, 6, -100, 8, -100}, prompt.targets(labels));
    assertEquals(7, prompt.keys());
    var prefix = dev.peftspark.core.nn.CausalMask.of(mask, 0, DataType.DOUBLE, 0, 2);
    assertArrayEquals(new int[] {0, 2, 3, 2, 3}, prefix.positions());
    assertArrayEquals(new int[] {-100, 6, -100, 8, -100}, prefix.targets(labels));
    assertEquals(7, prefix.keys());
    // the second document's first token sees the 2 prefix keys and itself, not the first document
    assertArrayEquals(new double[] {0, 0, -1e9, -1e9, -1e9, 0, -1e9}, prefix.bias().get(
        NDArrayIndex.point(0), NDArrayIndex.point(3), NDArrayIndex.all()).toDoubleVector());
    // a padding row sees only itself
    assertArrayEquals(new double[] {-1e9, -1e9, 0, -1e9, -1e9, -1e9, -1e9}, prefix.bias().get(
        NDArrayIndex.point(0), NDArrayIndex.point(0), NDArrayIndex.all()).toDoubleVector());
  }

  @Test
  void textInitCopiesEmbeddingRowsAndPrefixRefusesIt() {
    PeftCausalLm p = adapted("gpt2", Method.PROMPT_TUNING, new PromptConfig(5, List.of(4, 9), "four nine"), DataType.DOUBLE);
    INDArray table = p.model().inputEmbeddings().value();
    INDArray prompt = p.params().get("prompt_embeddings").value();
    int[] expect = {4, 9, 4, 9, 4};
    for (int i = 0; i < 5; i++) assertEquals(table.getRow(expect[i]), prompt.getRow(i));
    var e = assertThrows(IllegalArgumentException.class,
        () -> adapted("llama", Method.PREFIX_TUNING, new PromptConfig(5, List.of(4), "four"), DataType.DOUBLE));
    assertTrue(e.getMessage().contains("no text init"), e.getMessage());
    var noSection = assertThrows(IllegalArgumentException.class,
        () -> adapted("llama", Method.PROMPT_TUNING, null, DataType.DOUBLE));
    assertTrue(noSection.getMessage().contains("prompt section"), noSection.getMessage());
  }

  @Test
  void virtualTokensCountAgainstGpt2Positions() {
    PeftCausalLm p = adapted("gpt2", Method.PROMPT_TUNING, PromptConfig.random(NV), DataType.DOUBLE);   // 16 positions
    var e = assertThrows(IllegalArgumentException.class,
        () -> p.model().logits(new int[][] {new int[14]}, new int[][] {ones(14)}));
    assertTrue(e.getMessage().contains("3 virtual tokens included"), e.getMessage());
    var g = assertThrows(IllegalArgumentException.class, () -> dev.peftspark.core.generate.Generator.generate(p.model(),
        new int[14], dev.peftspark.core.generate.Generator.Settings.greedy(1, -1)));
    assertEquals("the prompt has 14 tokens (+ 3 virtual), more than the model's 16 positions", g.getMessage());
  }

  static int[] ones(int n) {
    int[] m = new int[n];
    Arrays.fill(m, 1);
    return m;
  }

  static int[] concat(int[] a, int[] b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
