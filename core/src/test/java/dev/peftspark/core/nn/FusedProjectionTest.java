package dev.peftspark.core.nn;

import dev.peftspark.core.peft.lora.LoraLinear;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.peftspark.core.nn.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * q/k/v and gate/up as one product ({@link FusedProjection}) against the same layers run one by one: outputs, dx and
 * every gradient, for full fine-tuning (weights adjacent in one ParamSet) and LoRA on q/v over packed frozen weights,
 * MHA and GQA, with and without q/k/v biases (Qwen2).
 */
class FusedProjectionTest {
  private static final int H = 16, HD = 4, T = 5, B = 2, I = 12;

  /** Base tensors shared by both variants (copied into each). */
  private final Map<String, INDArray> base = new LinkedHashMap<>();

  private INDArray tensor(SplittableRandom rng, String name, long... shape) {
    return base.computeIfAbsent(name, k -> randn(rng, shape).muli(0.4));
  }

  /** One variant's layers and every parameter it owns, by name. */
  private record Built(List<LinearLayer> qkv, List<LinearLayer> mlp, Map<String, Param> params) {}

  private Built build(DataType dt, int heads, int kvHeads, boolean bias, boolean lora, boolean fused) {
    SplittableRandom rng = new SplittableRandom(99);
    Map<String, Param> params = new LinkedHashMap<>();
    List<Param> weights = new ArrayList<>(), rest = new ArrayList<>();
    String[] names = {"q", "k", "v", "gate", "up"};
    int[] outs = {heads * HD, kvHeads * HD, kvHeads * HD, I, I};
    List<Linear> linears = new ArrayList<>();
    for (int i = 0; i < names.length; i++) {
      INDArray w = tensor(rng, names[i] + ".w", outs[i], H).castTo(dt);
      Param wp = lora ? Param.frozen(names[i] + ".weight", w.dup()) : Param.trainable(names[i] + ".weight", w.dup());
      Param bp = null;
      if (bias && i < 3) {
        INDArray bv = tensor(rng, names[i] + ".b", outs[i]).castTo(dt);
        bp = lora ? Param.frozen(names[i] + ".bias", bv.dup()) : Param.trainable(names[i] + ".bias", bv.dup());
        rest.add(bp);
        params.put(bp.name, bp);
      }
      weights.add(wp);
      params.put(wp.name, wp);
      linears.add(new Linear(names[i], wp, bp));
    }
    List<LinearLayer> layers = new ArrayList<>(linears);
    if (lora) {
      if (fused) {
        FusedProjection.pack(List.of(linears.get(0), linears.get(1), linears.get(2)));
        FusedProjection.pack(List.of(linears.get(3), linears.get(4)));
      }
      for (int i : new int[] {0, 2}) {   // q and v, as the bench's --targets q_proj,v_proj
        Param a = Param.trainable(names[i] + ".lora_A", tensor(rng, names[i] + ".A", 3, H).castTo(dt).dup());
        Param b = Param.trainable(names[i] + ".lora_B", tensor(rng, names[i] + ".B", outs[i], 3).castTo(dt).dup());
        rest.add(a);
        rest.add(b);
        params.put(a.name, a);
        params.put(b.name, b);
        layers.set(i, new LoraLinear(linears.get(i), a, b, 2.0, new Dropout(0.0, 1)));
      }
    }
    if (fused) {   // weights first (adjacent), then biases and adapters; trainable ones only
      List<Param> all = new ArrayList<>(weights);
      all.addAll(rest);
      new ParamSet(all.stream().filter(Param::isTrainable).toList(), dt);
    } else {       // one set each: nothing adjacent
      for (Param p : params.values()) if (p.isTrainable()) new ParamSet(List.of(p), dt);
    }
    return new Built(layers.subList(0, 3), layers.subList(3, 5), params);
  }

  @ParameterizedTest
  @CsvSource({
      "DOUBLE, 4, 4, false, false, 1e-12", "DOUBLE, 4, 2, false, true, 1e-12", "DOUBLE, 4, 2, true, false, 1e-12",
      "DOUBLE, 4, 4, true, true, 1e-12",
      "FLOAT, 4, 4, false, false, 1e-6", "FLOAT, 4, 2, false, true, 1e-6", "FLOAT, 4, 2, true, true, 1e-6",
      "FLOAT, 4, 1, true, false, 1e-6"})
  void fusedEqualsOneByOne(DataType dt, int heads, int kvHeads, boolean bias, boolean lora, double tol) {
    base.clear();
    Built plain = build(dt, heads, kvHeads, bias, lora, false), fused = build(dt, heads, kvHeads, bias, lora, true);
    assertNull(FusedProjection.of(plain.qkv()), "separate weights must run one by one");
    assertNull(FusedProjection.of(plain.mlp()));
    assertNotNull(FusedProjection.of(fused.qkv()), "adjacent weights must fuse");
    assertNotNull(FusedProjection.of(fused.mlp()));

    SplittableRandom rng = new SplittableRandom(7);
    INDArray x = randn(rng, (long) B * T, H).castTo(dt), dy = randn(rng, (long) B * T, H).castTo(dt);
    INDArray dyMlp = randn(rng, (long) B * T, H).castTo(dt);
    Rope rope = new Rope(HD, 100.0);
    int[][] m = new int[B][T];
    for (int[] row : m) java.util.Arrays.fill(row, 1);
    m[1][0] = 0;   // left padding
    INDArray[] a = run(plain, dt, heads, kvHeads, rope, m, x, dy, dyMlp), f = run(fused, dt, heads, kvHeads, rope, m, x, dy, dyMlp);
    String[] what = {"attention output", "attention dx", "mlp output", "mlp dx"};
    for (int i = 0; i < a.length; i++) assertClose(what[i], a[i], f[i], tol);
    int checked = 0;
    for (Param p : plain.params().values()) {
      if (!p.isTrainable()) continue;
      assertClose("grad " + p.name, p.grad(), fused.params().get(p.name).grad(), tol);
      assertTrue(p.grad().amaxNumber().doubleValue() > 0, p.name + " got no gradient");
      checked++;
    }
    assertTrue(checked >= (lora ? 4 : 5));
  }

  private INDArray[] run(Built m, DataType dt, int heads, int kvHeads, Rope rope, int[][] maskRows, INDArray x, INDArray dy, INDArray dyMlp) {
    SplittableRandom rng = new SplittableRandom(5);
    Linear o = new Linear("o", Param.frozen("o.weight", randn(rng, H, (long) heads * HD).castTo(dt)), null);
    Linear down = new Linear("down", Param.frozen("down.weight", randn(rng, H, I).castTo(dt)), null);
    CausalAttention att = new CausalAttention(m.qkv().get(0), m.qkv().get(1), m.qkv().get(2), o, heads, kvHeads, HD, rope);
    CausalMask mask = CausalMask.of(maskRows, 0, dt);
    Rope.Tables tables = rope.tables(mask.positions(), dt);
    INDArray y = att.forward(x.dup(), mask, tables).dup();
    INDArray dx = att.backward(dy.dup(), true).dup();
    SwiGlu mlp = new SwiGlu(m.mlp().get(0), m.mlp().get(1), down);
    INDArray ym = mlp.forward(x.dup()).dup();
    INDArray dxm = mlp.backward(dyMlp.dup(), true).dup();
    return new INDArray[] {y, dx, ym, dxm};
  }

  private static void assertClose(String what, INDArray expected, INDArray actual, double tol) {
    assertEquals(java.util.Arrays.toString(expected.shape()), java.util.Arrays.toString(actual.shape()), what);
    double scale = expected.castTo(DataType.DOUBLE).amaxNumber().doubleValue();
    double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    assertTrue(scale > 0, what + " is all zero");
    assertTrue(diff <= tol * scale, what + ": max difference " + diff + " > " + tol + " × " + scale);
  }
}
