package dev.peftspark.core.model;

import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.LmHeadLoss;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.peft.lora.Lora;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.lora.LoraLinear;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** End-to-end gradients of the LLaMA causal LM (embedding, GQA + RoPE layers, tied or untied head, chunked loss). */
class LlamaGradientTest {
  // row 1 is left-padded, row 2 packs two documents and ignores some labels
  private static final int[][] IDS = {{1, 7, 9, 3, 2, 5}, {0, 0, 4, 11, 28, 6}, {1, 5, 2, 1, 8, 8}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1}, {1, 1, 1, 2, 2, 2}};
  private static final int[][] LABELS = {{1, 7, 9, 3, 2, 5}, {-100, -100, 4, 11, 28, 6}, {1, 5, -100, 1, 8, -100}};

  @BeforeAll
  static void doublePrecision() {
    Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
  }

  private static double loss(CausalLm m) { return m.evaluate(IDS, MASK, LABELS).mean(); }

  @Test
  void fullFineTuningTiedEveryTensor() {
    LlamaConfig c = TinyLlama.config(true, false);
    LlamaModel m = LlamaModel.fromWeights(c, TinyLlama.weights(c, DataType.DOUBLE, 1), DataType.DOUBLE, true);
    assertTrue(((dev.peftspark.core.nn.Linear) m.head()).weight() == m.embedding().table(), "tied head shares the embedding parameter");
    m.setLossChunkRows(4);
    ParamSet ps = new ParamSet(m.trainableParams(), DataType.DOUBLE);
    assertEquals(m.params().size(), ps.params().size());
    assertFalse(m.stateDict().containsKey("lm_head.weight"));
    ps.zeroGrad();
    double mean = m.trainStep(IDS, MASK, LABELS, 1.0);
    assertEquals(loss(m), mean, 1e-12);
    GradCheck.checkParams("full tied", m.trainableParams(), () -> loss(m), 4);
  }

  @Test
  void fullFineTuningUntiedWithQwen2Biases() {
    LlamaConfig c = TinyLlama.config(false, true);
    LlamaModel m = LlamaModel.fromWeights(c, TinyLlama.weights(c, DataType.DOUBLE, 2), DataType.DOUBLE, true);
    assertTrue(m.stateDict().containsKey("lm_head.weight"));
    assertTrue(m.stateDict().containsKey("model.layers.1.self_attn.k_proj.bias"));
    assertFalse(m.stateDict().containsKey("model.layers.1.self_attn.o_proj.bias"));
    ParamSet ps = new ParamSet(m.trainableParams(), DataType.DOUBLE);
    ps.zeroGrad();
    m.trainStep(IDS, MASK, LABELS, 0.5);
    GradCheck.checkParams("full untied", m.trainableParams(), () -> 0.5 * loss(m), 3);
  }

  @Test
  void loraOnQueryAndValueWithNonZeroB() {
    LlamaConfig c = TinyLlama.config(true, false);
    LlamaModel m = LlamaModel.fromWeights(c, TinyLlama.weights(c, DataType.DOUBLE, 3), DataType.DOUBLE, false);
    m.setLossChunkRows(5);
    List<Param> adapters = Lora.inject(m, new LoraConfig(3, 6, 0.2, List.of("q_proj", "v_proj"), false, "none", false),
        DataType.DOUBLE, 11);
    assertEquals(2 * 2 * c.numHiddenLayers(), adapters.size());
    assertEquals(adapters, m.trainableParams());
    ParamSet ps = new ParamSet(adapters, DataType.DOUBLE);
    SplittableRandom rng = new SplittableRandom(5);
    for (Param p : adapters) if (p.name.contains("lora_B")) p.value().assign(GradCheck.randn(rng, p.shape).muli(0.3));
    for (LinearLayer l : m.linears()) if (l instanceof LoraLinear lora) GradCheck.freeze(lora.dropout());
    ps.zeroGrad();
    m.trainStep(IDS, MASK, LABELS, 1.0);
    GradCheck.checkParams("lora", adapters, () -> loss(m), 12);
    for (Param p : m.params()) if (!p.isTrainable()) assertNull(p.grad(), p.name + " is frozen: no gradient buffer");
    assertEquals("model.layers.0.self_attn.q_proj.lora_A.weight", adapters.get(0).name);
  }

  @Test
  void allLinearTargetsSevenModulesPerLayerAndNotTheHead() {
    LlamaConfig c = TinyLlama.config(false, false);
    LlamaModel m = LlamaModel.fromWeights(c, TinyLlama.weights(c, DataType.DOUBLE, 4), DataType.DOUBLE, false);
    List<Param> adapters = Lora.inject(m, new LoraConfig(2, 2, 0, List.of("all-linear"), false, "none", false), DataType.DOUBLE, 1);
    assertEquals(2 * 7 * c.numHiddenLayers(), adapters.size());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () ->
        Lora.inject(m, new LoraConfig(2, 2, 0, List.of("query"), false, "none", false), DataType.DOUBLE, 1));
    assertTrue(e.getMessage().contains("q_proj") && e.getMessage().contains("model.layers.N"), e.getMessage());
  }

  @Test
  void lossIsSameWhateverTheChunkAndMatchesFullLogits() {
    LlamaConfig c = TinyLlama.config(false, false);
    LlamaModel m = LlamaModel.fromWeights(c, TinyLlama.weights(c, DataType.DOUBLE, 6), DataType.DOUBLE, false);
    LmHeadLoss.Result a = m.evaluate(IDS, MASK, LABELS);
    m.setLossChunkRows(1);
    LmHeadLoss.Result b = m.evaluate(IDS, MASK, LABELS);
    assertEquals(a.lossSum(), b.lossSum(), 1e-10);
    // row 0: 5 targets; row 1: 3 (padding excluded); row 2: positions 0 and 3 (-100 labels excluded, and
    // position 2, the end of document 1, does not predict document 2's first token)
    assertEquals(10, a.tokens());
    INDArray logits = m.logits(IDS, MASK);
    int[] rows = {0, 1, 2, 3, 4, 8, 9, 10, 12, 15};
    int[] ys = {7, 9, 3, 2, 5, 11, 28, 6, 5, 8};
    double sum = 0;
    for (int i = 0; i < rows.length; i++) sum += nll(logits.getRow(rows[i]), ys[i]);
    assertEquals(a.lossSum(), sum, 1e-10);
  }

  private static double nll(INDArray row, int y) {
    double max = row.maxNumber().doubleValue();
    double lse = Math.log(org.nd4j.linalg.ops.transforms.Transforms.exp(row.sub(max), true).sumNumber().doubleValue()) + max;
    return lse - row.getDouble(y);
  }
}
