package dev.peftspark.core.model;

import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.LinearModules;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.peft.lora.Lora;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.quant.HalfLinear;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Embedding table and LM head stored in 16 bits against a full-precision model built from the same rounded
 * weights: the only difference left is the order of floating-point sums, so the tolerance is round-off, not the
 * 16-bit rounding.
 */
class HalfTablesTest {
  private static final int[][] IDS = {{1, 7, 9, 3, 2, 5}, {0, 0, 4, 11, 28, 6}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1}};
  private static final int[][] LABELS = {{1, 7, 9, 3, 2, 5}, {-100, -100, 4, 11, 28, 6}};
  private static final LoraConfig LORA = new LoraConfig(3, 6, 0.0, List.of("q_proj", "v_proj", "lm_head"), false, "none", false);

  /** The weights with the embedding and head rounded to {@code half} and widened back. */
  private static Map<String, INDArray> rounded(Map<String, INDArray> w, DataType half, DataType dtype) {
    Map<String, INDArray> out = new LinkedHashMap<>(w);
    for (String k : List.of("model.embed_tokens.weight", "lm_head.weight")) {
      if (out.containsKey(k)) out.put(k, w.get(k).castTo(half).castTo(dtype));
    }
    return out;
  }

  /** LoRA on q, v and lm_head, B non-zero (the same values in both models), head widened 7 rows at a time. */
  private static LlamaModel adapted(LlamaModel m, DataType dtype, boolean blockHead) {
    if (blockHead) m.mapHead(h -> new HalfLinear("lm_head", ((HalfLinear) h).weight(), 7));
    m.setLossChunkRows(4);
    List<Param> adapters = Lora.inject(withHead(m), LORA, dtype, 11);
    SplittableRandom rng = new SplittableRandom(5);
    for (Param p : adapters) if (p.name.contains("lora_B")) p.value().assign(GradCheck.randn(rng, p.shape).muli(0.3).castTo(dtype));
    return m;
  }

  /** The layer linears plus lm_head, so that LoRA may target the head. */
  private static LinearModules withHead(CausalLm m) {
    return new LinearModules() {
      @Override public List<LinearLayer> linears() {
        List<LinearLayer> all = new ArrayList<>(m.linears());
        all.add(m.head());
        return all;
      }

      @Override public void mapLinears(UnaryOperator<LinearLayer> f) {
        m.mapLinears(f);
        m.mapHead(f);
      }
    };
  }

  @ParameterizedTest
  @CsvSource({"BFLOAT16, DOUBLE, true, 1e-12", "BFLOAT16, DOUBLE, false, 1e-12", "HALF, DOUBLE, false, 1e-12",
      "BFLOAT16, FLOAT, false, 1e-5", "HALF, FLOAT, true, 1e-5"})
  void equalsTheFullPrecisionModelOnTheRoundedWeights(String halfName, String dtypeName, boolean tied, double tol) {
    DataType half = DataType.valueOf(halfName), dtype = DataType.valueOf(dtypeName);
    LlamaConfig c = TinyLlama.config(tied, false);
    Map<String, INDArray> w = TinyLlama.weights(c, dtype, 3);
    LlamaModel small = adapted(LlamaModel.fromWeights(c, w, dtype, false, l -> l, half), dtype, true);
    LlamaModel full = adapted(LlamaModel.fromWeights(c, rounded(w, half, dtype), dtype, false), dtype, false);
    assertEquals(half, small.embedding().table().value().dataType());
    assertInstanceOf(HalfLinear.class, small.head().base());
    if (tied) assertSame(small.embedding().table(), ((HalfLinear) small.head().base()).weight());

    INDArray expected = full.logits(IDS, MASK), got = small.logits(IDS, MASK);
    assertEquals(dtype, got.dataType());
    assertEquals(0, expected.sub(got).amaxNumber().doubleValue(), tol * expected.amaxNumber().doubleValue());

    ParamSet pf = new ParamSet(full.trainableParams(), dtype), ps = new ParamSet(small.trainableParams(), dtype);
    assertEquals(pf.names(), ps.names());
    pf.zeroGrad();
    ps.zeroGrad();
    double lf = full.trainStep(IDS, MASK, LABELS, 1.0), ls;
    try (var ws = Nd4jSetup.stepWorkspace()) {    // the blocks are closed inside a workspace too
      ls = small.trainStep(IDS, MASK, LABELS, 1.0);
    }
    assertEquals(lf, ls, tol * Math.abs(lf));
    double scale = pf.grads().amaxNumber().doubleValue();
    assertTrue(scale > 1e-3, "gradients flow through the head and the embedding-fed layers: " + scale);
    assertEquals(0, pf.grads().sub(ps.grads()).amaxNumber().doubleValue(), tol * scale, "adapter gradients");
  }

  @Test
  void sixteenBitTablesAreFrozen() {
    LlamaConfig c = TinyLlama.config(false, false);
    var e = assertThrows(IllegalArgumentException.class,
        () -> LlamaModel.fromWeights(c, TinyLlama.weights(c, DataType.FLOAT, 1), DataType.FLOAT, true, l -> l, DataType.BFLOAT16));
    assertTrue(e.getMessage().contains("model.embed_tokens.weight"), e.getMessage());
    var f = assertThrows(IllegalArgumentException.class,
        () -> LlamaModel.fromWeights(c, TinyLlama.weights(c, DataType.FLOAT, 1), DataType.FLOAT, false, l -> l, DataType.INT));
    assertTrue(f.getMessage().contains("16 bits"), f.getMessage());
  }
}
