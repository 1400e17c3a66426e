package dev.peftspark.core.model;

import dev.peftspark.core.nn.CausalAttention;
import dev.peftspark.core.nn.CausalMask;
import dev.peftspark.core.nn.GeluTanh;
import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.peft.lora.Lora;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.lora.LoraLinear;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.peftspark.core.nn.GradCheck.check;
import static dev.peftspark.core.nn.GradCheck.probe;
import static dev.peftspark.core.nn.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** GPT-2: gelu_new, fused c_attn, Conv1D layout, end-to-end gradients (full and LoRA) and a reference forward. */
class Gpt2GradientTest {
  private static final int[][] IDS = {{1, 7, 9, 3, 2, 5}, {0, 0, 4, 11, 28, 6}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1}};
  private final SplittableRandom rng = new SplittableRandom(77);

  @BeforeAll
  static void doublePrecision() {
    Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
  }

  static Gpt2Config tiny() { return new Gpt2Config(29, 16, 8, 2, 2, 12, 1e-5, true, 0.3); }

  /** Random weights with LayerNorms and biases perturbed (checkpoint layout). */
  static Map<String, INDArray> weights(Gpt2Config c, long seed) {
    Map<String, INDArray> w = Gpt2Model.randomWeights(c, DataType.DOUBLE, seed);
    SplittableRandom r = new SplittableRandom(seed);
    for (var e : w.entrySet()) if (e.getValue().rank() == 1) e.getValue().addi(randn(r, e.getValue().shape()).muli(0.2));
    return w;
  }

  private Param trainable(String name, INDArray v) {
    Param p = Param.trainable(name, v);
    new ParamSet(List.of(p), DataType.DOUBLE);
    return p;
  }

  @Test
  void geluNewValueAndGradient() {
    GeluTanh g = new GeluTanh();
    INDArray x = randn(rng, 3, 7).muli(2), r = randn(rng, 3, 7);
    INDArray y = g.forward(x);
    for (int i = 0; i < 7; i++) {
      double v = x.getDouble(0, i);
      assertEquals(0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))), y.getDouble(0, i), 1e-12);
    }
    INDArray dx = g.backward(r);
    check("gelu_new dx", x, dx, () -> probe(new GeluTanh().forward(x), r), 100);
  }

  @Test
  void fusedAttentionEqualsSeparateProjectionsAndHasRightGradients() {
    int h = 6, heads = 3, hd = 2;
    Linear fused = new Linear("c_attn", trainable("c_attn.weight", randn(rng, 3 * h, h).muli(0.5)), trainable("c_attn.bias", randn(rng, 3 * h).muli(0.3)));
    Linear out = new Linear("c_proj", trainable("c_proj.weight", randn(rng, h, h).muli(0.5)), trainable("c_proj.bias", randn(rng, h)));
    CausalAttention att = CausalAttention.fused(fused, out, heads, hd);
    Linear[] split = new Linear[3];
    for (int s = 0; s < 3; s++) {
      INDArray rows = fused.weight().value().get(NDArrayIndex.interval(s * h, (s + 1) * h), NDArrayIndex.all()).dup();
      INDArray bias = fused.bias().value().get(NDArrayIndex.interval(s * h, (s + 1) * h)).dup();
      split[s] = new Linear("p" + s, Param.frozen("w" + s, rows), Param.frozen("b" + s, bias));
    }
    CausalAttention separate = new CausalAttention(split[0], split[1], split[2], out, heads, heads, hd, null);
    CausalMask mask = CausalMask.of(MASK, 0, DataType.DOUBLE);
    INDArray x = randn(rng, 12, h), r = randn(rng, 12, h);
    INDArray y = att.forward(x, mask, null).dup();
    assertEquals(0.0, y.sub(separate.forward(x, mask, null)).amaxNumber().doubleValue(), 1e-12);
    att.forward(x, mask, null);
    for (Param p : List.of(fused.weight(), fused.bias(), out.weight(), out.bias())) p.grad().assign(0);
    INDArray dx = att.backward(r, true);
    check("fused attention dx", x, dx, () -> probe(att.forward(x, mask, null), r), 100);
    GradCheck.checkParams("fused attention", List.of(fused.weight(), fused.bias(), out.weight(), out.bias()),
        () -> probe(att.forward(x, mask, null), r), 40);
  }

  private static double loss(CausalLm m) { return m.evaluate(IDS, MASK, null).mean(); }

  @Test
  void fullFineTuningEveryTensor() {
    Gpt2Config c = tiny();
    Gpt2Model m = Gpt2Model.fromWeights(c, weights(c, 1), DataType.DOUBLE, true);
    m.setLossChunkRows(3);
    ParamSet ps = new ParamSet(m.trainableParams(), DataType.DOUBLE);
    ps.zeroGrad();
    m.trainStep(IDS, MASK, null, 1.0);
    GradCheck.checkParams("gpt2 full", m.trainableParams(), () -> loss(m), 4);
  }

  @Test
  void loraOnFusedAttentionAndMlp() {
    Gpt2Config c = tiny();
    Gpt2Model m = Gpt2Model.fromWeights(c, weights(c, 2), DataType.DOUBLE, false);
    List<Param> adapters = Lora.inject(m, new LoraConfig(2, 4, 0, List.of("c_attn", "c_fc"), false, "none", false), DataType.DOUBLE, 5);
    assertEquals("transformer.h.0.attn.c_attn.lora_A.weight", adapters.get(0).name);
    assertEquals(c.nLayer() * (2L * 8 + 24 * 2 + 2 * 8 + 12 * 2),
        adapters.stream().mapToLong(Param::length).sum(), "A [r, in] and B [out, r] whatever the Conv1D storage");
    ParamSet ps = new ParamSet(adapters, DataType.DOUBLE);
    SplittableRandom r = new SplittableRandom(3);
    for (Param p : adapters) if (p.name.contains("lora_B")) p.value().assign(randn(r, p.shape).muli(0.3));
    ps.zeroGrad();
    m.trainStep(IDS, MASK, null, 1.0);
    GradCheck.checkParams("gpt2 lora", adapters, () -> loss(m), 12);
    for (Param p : m.params()) if (!p.isTrainable()) assertNull(p.grad());
    assertTrue(m.linears().stream().filter(l -> l instanceof LoraLinear).count() == 2L * c.nLayer());
  }

  /** The single-precision kernels (LayerNorm, gelu_new, attention, LM-head loss) against the double path above, end to end. */
  @Test
  void floatStepMatchesDoubleStep() {
    Gpt2Config c = tiny();
    Map<String, INDArray> w = weights(c, 6);
    Map<String, INDArray> w32 = new LinkedHashMap<>();
    for (var e : w.entrySet()) w32.put(e.getKey(), e.getValue().castTo(DataType.FLOAT));
    Gpt2Model m64 = Gpt2Model.fromWeights(c, w, DataType.DOUBLE, true), m32 = Gpt2Model.fromWeights(c, w32, DataType.FLOAT, true);
    m64.setLossChunkRows(4);
    m32.setLossChunkRows(4);
    ParamSet ps64 = new ParamSet(m64.trainableParams(), DataType.DOUBLE), ps32 = new ParamSet(m32.trainableParams(), DataType.FLOAT);
    ps64.zeroGrad();
    ps32.zeroGrad();
    double l64 = m64.trainStep(IDS, MASK, null, 1.0), l32 = m32.trainStep(IDS, MASK, null, 1.0);
    assertEquals(l64, l32, 1e-6 * Math.abs(l64));
    List<Param> p64 = m64.trainableParams(), p32 = m32.trainableParams();
    assertEquals(p64.size(), p32.size());
    for (int i = 0; i < p64.size(); i++) {
      INDArray g64 = p64.get(i).grad(), g32 = p32.get(i).grad().castTo(DataType.DOUBLE);
      double scale = Math.max(1e-3, g64.amaxNumber().doubleValue()), err = g64.sub(g32).amaxNumber().doubleValue();
      assertTrue(err < 1e-4 * scale, p64.get(i).name + ": max |double - float| = " + err + " (scale " + scale + ")");
    }
  }

  @Test
  void forwardMatchesAReferenceOnCheckpointLayoutAndUnprefixedKeysLoad() {
    Gpt2Config c = new Gpt2Config(29, 16, 8, 1, 2, 12, 1e-5, true, 0.3);
    Map<String, INDArray> w = weights(c, 4);
    // openai-community/gpt2 stores keys without "transformer." and keeps the causal-mask buffers
    Map<String, INDArray> unprefixed = new LinkedHashMap<>();
    for (var e : w.entrySet()) unprefixed.put(e.getKey().substring("transformer.".length()), e.getValue());
    unprefixed.put("h.0.attn.bias", Nd4j.ones(DataType.DOUBLE, 1, 1, 16, 16));
    Gpt2Model m = Gpt2Model.fromWeights(c, unprefixed, DataType.DOUBLE, false);
    int[][] ids = {{3, 1, 4, 1, 5}};
    INDArray logits = m.logits(ids, new int[][] {{1, 1, 1, 1, 1}});
    assertEquals(0.0, logits.sub(reference(w, ids[0], c)).amaxNumber().doubleValue(), 1e-10);
    Map<String, INDArray> state = m.stateDict();
    assertEquals(w.keySet(), state.keySet());
    for (var e : w.entrySet()) assertEquals(e.getValue(), state.get(e.getKey()), e.getKey());
  }

  /** GPT-2 written out directly from the checkpoint tensors: x·W[in, out] + b, one layer. */
  private static INDArray reference(Map<String, INDArray> w, int[] ids, Gpt2Config c) {
    int t = ids.length, h = c.nEmbd(), hd = c.headDim();
    INDArray x = Nd4j.create(DataType.DOUBLE, t, h);
    for (int i = 0; i < t; i++) x.getRow(i).assign(w.get("transformer.wte.weight").getRow(ids[i]).add(w.get("transformer.wpe.weight").getRow(i)));
    String p = "transformer.h.0.";
    INDArray qkv = ln(x, w, p + "ln_1", c).mmul(w.get(p + "attn.c_attn.weight")).addRowVector(w.get(p + "attn.c_attn.bias"));
    INDArray ctx = Nd4j.create(DataType.DOUBLE, t, h);
    for (int head = 0; head < c.nHead(); head++) {
      INDArray q = qkv.get(NDArrayIndex.all(), NDArrayIndex.interval(head * hd, (head + 1) * hd));
      INDArray k = qkv.get(NDArrayIndex.all(), NDArrayIndex.interval(h + head * hd, h + (head + 1) * hd));
      INDArray v = qkv.get(NDArrayIndex.all(), NDArrayIndex.interval(2 * h + head * hd, 2 * h + (head + 1) * hd));
      INDArray s = q.mmul(k.transpose()).divi(Math.sqrt(hd));
      for (int i = 0; i < t; i++) for (int j = i + 1; j < t; j++) s.putScalar(i, j, -1e30);
      INDArray probs = Nd4j.exec(new SoftMax(s, null, -1))[0];
      ctx.get(NDArrayIndex.all(), NDArrayIndex.interval(head * hd, (head + 1) * hd)).assign(probs.mmul(v));
    }
    INDArray hid = ctx.mmul(w.get(p + "attn.c_proj.weight")).addRowVector(w.get(p + "attn.c_proj.bias")).addi(x);
    INDArray a = ln(hid, w, p + "ln_2", c).mmul(w.get(p + "mlp.c_fc.weight")).addRowVector(w.get(p + "mlp.c_fc.bias"));
    INDArray gelu = Transforms.tanh(a.mul(a).mul(a).muli(0.044715).addi(a).muli(Math.sqrt(2 / Math.PI))).addi(1).muli(a).muli(0.5);
    INDArray y = gelu.mmul(w.get(p + "mlp.c_proj.weight")).addRowVector(w.get(p + "mlp.c_proj.bias")).addi(hid);
    return ln(y, w, "transformer.ln_f", c).mmul(w.get("transformer.wte.weight").transpose());
  }

  private static INDArray ln(INDArray x, Map<String, INDArray> w, String name, Gpt2Config c) {
    INDArray mean = x.mean(true, 1);
    INDArray centered = x.subColumnVector(mean);
    INDArray var = centered.mul(centered).mean(true, 1);
    return centered.diviColumnVector(Transforms.sqrt(var.addi(c.layerNormEpsilon()))).mulRowVector(w.get(name + ".weight"))
        .addRowVector(w.get(name + ".bias"));
  }

  @Test
  void configParsingAndParameterCount() throws Exception {
    assertEquals(124_439_808L, Gpt2Config.small().parameterCount());   // GPT-2 small as Hugging Face reports it
    Gpt2Config parsed = Gpt2Config.fromJson("gpt2", new com.fasterxml.jackson.databind.ObjectMapper().readTree("""
        {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_ctx": 1024,
         "n_embd": 768, "n_head": 12, "n_inner": null, "n_layer": 12, "n_positions": 1024, "layer_norm_epsilon": 1e-05,
         "vocab_size": 50257}"""));
    assertEquals(Gpt2Config.small(), parsed);
    assertEquals(parsed, Gpt2Config.fromJson("round trip", parsed.toJson("float32")));
    List<LinearLayer> linears = Gpt2Model.fromWeights(tiny(), weights(tiny(), 1), DataType.DOUBLE, false).linears();
    assertEquals(List.of("transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj"),
        new ArrayList<>(linears.stream().map(LinearLayer::name).toList()).subList(0, 4));
  }
}
