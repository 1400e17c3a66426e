package dev.peftspark.core.peft.prompt;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.io.TensorInfo;
import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.core.model.TinyBert;
import dev.peftspark.core.nn.CrossEntropy;
import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.nn.SelfAttention;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Prompt and prefix tuning: semantics against independent formulations, gradients, PEFT's file layout. */
class PromptLearningTest {
  private static final int[][] IDS = {{1, 7, 9, 3, 2}, {1, 30, 2, 0, 0}, {1, 4, 4, 4, 2}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}};
  private static final int[] LABELS = {0, 2, 1};
  private static final int NV = 3;

  private static PeftClassifier model(Method method, PromptConfig cfg, DataType dtype, long seed) {
    BertConfig c = TinyBert.config();
    return PeftClassifier.create(method, null, null, cfg, c, TinyBert.weights(c, seed), 3, Pooling.Mode.MEAN, dtype, 7);
  }

  /**
   * Prompt tuning equals a plain encoder whose vocabulary has the virtual tokens as extra rows, run on ids with those
   * rows prepended (never masked), with the virtual positions dropped from the output.
   */
  @Test
  void promptTuningIsExtraTokensInFront() {
    BertConfig c = TinyBert.config();
    PeftClassifier m = model(Method.PROMPT_TUNING, PromptConfig.random(NV), DataType.DOUBLE, 1);
    INDArray prompt = m.params().get(PromptTuning.TENSOR).value();
    assertArrayEquals(new long[] {NV, c.hiddenSize()}, prompt.shape());

    Map<String, INDArray> extended = new LinkedHashMap<>(TinyBert.weights(c, 1));
    INDArray words = extended.get("embeddings.word_embeddings.weight");
    extended.put("embeddings.word_embeddings.weight", Nd4j.concat(0, words, prompt));
    BertConfig big = new BertConfig(c.vocabSize() + NV, c.hiddenSize(), c.numHiddenLayers(), c.numAttentionHeads(),
        c.intermediateSize(), c.maxPositionEmbeddings(), c.typeVocabSize(), c.layerNormEps());
    BertEncoder plain = BertEncoder.fromWeights(big, extended, DataType.DOUBLE, false);
    int[][] ids = new int[IDS.length][], mask = new int[IDS.length][];
    for (int b = 0; b < IDS.length; b++) {
      ids[b] = new int[NV + IDS[b].length];
      mask[b] = new int[NV + IDS[b].length];
      for (int j = 0; j < NV; j++) { ids[b][j] = c.vocabSize() + j; mask[b][j] = 1; }
      System.arraycopy(IDS[b], 0, ids[b], NV, IDS[b].length);
      System.arraycopy(MASK[b], 0, mask[b], NV, IDS[b].length);
    }
    INDArray expected = plain.forward(ids, mask).reshape(3, NV + 5, c.hiddenSize())
        .get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(NV, NV + 5),
            org.nd4j.linalg.indexing.NDArrayIndex.all()).dup().reshape(15, c.hiddenSize());
    INDArray got = m.model().encoder().forward(IDS, MASK);
    assertEquals(0.0, expected.sub(got).amaxNumber().doubleValue(), 1e-12);
    INDArray without = model(Method.HEAD, null, DataType.DOUBLE, 1).model().encoder().forward(IDS, MASK);
    assertTrue(without.sub(got).amaxNumber().doubleValue() > 1e-2, "the virtual tokens change the hidden states");
  }

  /** A prefix layer against a naive loop: softmax over [prefix keys, own keys], padding keys masked. */
  @Test
  void prefixAttentionMatchesNaiveLoops() {
    int h = 8, heads = 2, hd = 4, batch = 2, seq = 3, layers = 2, layer = 1;
    SplittableRandom rng = new SplittableRandom(11);
    Linear[] lin = new Linear[4];
    for (int i = 0; i < 4; i++) {
      lin[i] = new Linear("m" + i, Param.frozen("m" + i + ".weight", GradCheck.randn(rng, h, h).muli(0.4)),
          Param.frozen("m" + i + ".bias", GradCheck.randn(rng, h).muli(0.1)));
    }
    SelfAttention att = new SelfAttention(lin[0], lin[1], lin[2], lin[3], heads);
    INDArray prefixValue = GradCheck.randn(rng, NV, layers * 2 * h);
    att.setPrefix(Param.frozen("prompt_embeddings", prefixValue), layer);
    INDArray x = GradCheck.randn(rng, batch * seq, h);
    INDArray maskBias = Nd4j.createFromArray(new double[][] {{0, 0, 0}, {0, 0, -1e9}});
    INDArray got = att.forward(x, maskBias, batch, seq);

    INDArray q = lin[0].forward(x), k = lin[1].forward(x), v = lin[2].forward(x);
    INDArray ctx = Nd4j.zeros(DataType.DOUBLE, batch * seq, h);
    for (int b = 0; b < batch; b++) {
      for (int n = 0; n < heads; n++) {
        for (int i = 0; i < seq; i++) {
          double[] s = new double[NV + seq];
          for (int j = 0; j < NV + seq; j++) {
            double dot = 0;
            for (int d = 0; d < hd; d++) {
              double kj = j < NV ? prefixValue.getDouble(j, (2 * layer) * h + n * hd + d)
                  : k.getDouble(b * seq + j - NV, n * hd + d);
              dot += q.getDouble(b * seq + i, n * hd + d) * kj;
            }
            s[j] = dot / Math.sqrt(hd) + (j >= NV && b == 1 && j - NV == 2 ? -1e9 : 0);
          }
          double max = Double.NEGATIVE_INFINITY, sum = 0;
          for (double e : s) max = Math.max(max, e);
          for (int j = 0; j < s.length; j++) { s[j] = Math.exp(s[j] - max); sum += s[j]; }
          for (int d = 0; d < hd; d++) {
            double acc = 0;
            for (int j = 0; j < NV + seq; j++) {
              double vj = j < NV ? prefixValue.getDouble(j, (2 * layer + 1) * h + n * hd + d)
                  : v.getDouble(b * seq + j - NV, n * hd + d);
              acc += s[j] / sum * vj;
            }
            ctx.putScalar(b * seq + i, n * hd + d, acc);
          }
        }
      }
    }
    INDArray expected = lin[3].forward(ctx);
    assertEquals(0.0, expected.sub(got).amaxNumber().doubleValue(), 1e-12);
  }

  @Test
  void promptTuningGradientsMatchFiniteDifferences() {
    checkGradients(Method.PROMPT_TUNING);
  }

  @Test
  void prefixTuningGradientsMatchFiniteDifferences() {
    checkGradients(Method.PREFIX_TUNING);
  }

  private static void checkGradients(Method method) {
    PeftClassifier m = model(method, PromptConfig.random(NV), DataType.DOUBLE, 3);
    m.params().values().muli(0.5);   // moderate virtual tokens (N(0,1) saturates a tiny model's softmax)
    m.params().zeroGrad();
    m.model().trainStep(IDS, MASK, LABELS, 1.0);
    BertClassifier net = m.model();
    List<Param> trainable = net.trainableParams();
    assertEquals(List.of("prompt_embeddings", "classifier.weight", "classifier.bias"),
        trainable.stream().map(p -> p.name).toList());
    GradCheck.checkParams(method.key(), trainable,
        () -> CrossEntropy.lossAndGrad(net.forward(IDS, MASK), LABELS, null, 1), 40);
  }

  @Test
  void textInitCopiesTheTokensEmbeddings() {
    BertConfig c = TinyBert.config();
    PeftClassifier m = model(Method.PROMPT_TUNING, new PromptConfig(5, List.of(4, 9), "four nine"), DataType.DOUBLE, 2);
    INDArray words = TinyBert.weights(c, 2).get("embeddings.word_embeddings.weight");
    INDArray prompt = m.params().get(PromptTuning.TENSOR).value();
    int[] expected = {4, 9, 4, 9, 4};   // PEFT repeats the text's ids, then cuts
    for (int i = 0; i < 5; i++) assertEquals(words.getRow(expected[i]), prompt.getRow(i));
    assertThrows(IllegalArgumentException.class,
        () -> model(Method.PREFIX_TUNING, new PromptConfig(5, List.of(4), "four"), DataType.DOUBLE, 2));
  }

  @Test
  void mergingIsRefusedWithAReason() {
    PeftClassifier m = model(Method.PREFIX_TUNING, PromptConfig.random(NV), DataType.DOUBLE, 2);
    var e = assertThrows(IllegalArgumentException.class, () -> dev.peftspark.core.peft.AdapterMerge.mergedWeights(m));
    assertTrue(e.getMessage().startsWith("prefix_tuning adapters cannot be merged"), e.getMessage());
  }

  @Test
  void tooManyVirtualTokensForThePositionsIsNamed() {
    PeftClassifier m = model(Method.PROMPT_TUNING, PromptConfig.random(14), DataType.DOUBLE, 2);
    var e = assertThrows(IllegalArgumentException.class, () -> m.model().forward(IDS, MASK));
    assertTrue(e.getMessage().contains("19 tokens (14 virtual + 5) exceeds the model's 16 positions"), e.getMessage());
  }

  @Test
  void savesAndLoadsInPeftLayout(@TempDir Path tmp) throws Exception {
    BertConfig c = TinyBert.config();
    for (Method method : List.of(Method.PROMPT_TUNING, Method.PREFIX_TUNING)) {
      Path dir = tmp.resolve(method.key());
      PeftClassifier m = model(method, PromptConfig.random(NV), DataType.FLOAT, 8);
      m.params().values().addi(0.25);
      AdapterFiles.save(dir, m, List.of("a", "b", "c"), "tiny", "hf/tiny");
      JsonNode cfg = new ObjectMapper().readTree(Files.readString(dir.resolve(AdapterFiles.CONFIG)));
      assertEquals(method.name(), cfg.get("peft_type").asText());
      assertEquals("SEQ_CLS", cfg.get("task_type").asText());
      assertEquals(NV, cfg.get("num_virtual_tokens").asInt());
      assertEquals(c.hiddenSize(), cfg.get("token_dim").asInt());
      assertEquals(c.numHiddenLayers(), cfg.get("num_layers").asInt());
      long width = method == Method.PROMPT_TUNING ? c.hiddenSize() : 2L * c.numHiddenLayers() * c.hiddenSize();
      try (SafeTensors st = SafeTensors.open(dir.resolve(AdapterFiles.WEIGHTS))) {
        Map<String, long[]> keys = new LinkedHashMap<>();
        for (TensorInfo t : st.tensors()) keys.put(t.name(), t.shape());
        assertArrayEquals(new long[] {NV, width}, keys.get("prompt_embeddings"));
        assertArrayEquals(new long[] {3, c.hiddenSize()}, keys.get("base_model.classifier.weight"));
        assertArrayEquals(new long[] {3}, keys.get("base_model.classifier.bias"));
        assertEquals(3, keys.size());
      }
      PeftClassifier back = AdapterFiles.load(dir, c, TinyBert.weights(c, 8), DataType.FLOAT);
      assertEquals(method, back.method());
      assertEquals(m.params().values(), back.params().values());
      assertEquals(m.model().forward(IDS, MASK), back.model().forward(IDS, MASK));
    }
  }
}
