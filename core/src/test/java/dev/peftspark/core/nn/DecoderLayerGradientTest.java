package dev.peftspark.core.nn;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static dev.peftspark.core.nn.GradCheck.check;
import static dev.peftspark.core.nn.GradCheck.checkParams;
import static dev.peftspark.core.nn.GradCheck.probe;
import static dev.peftspark.core.nn.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The decoder layers' backwards against central finite differences (double), plus their defining properties. */
class DecoderLayerGradientTest {
  private final SplittableRandom rng = new SplittableRandom(4321);

  @BeforeAll
  static void doublePrecision() {
    Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
  }

  private Param trainable(String name, INDArray v) {
    Param p = Param.trainable(name, v);
    new ParamSet(List.of(p), DataType.DOUBLE);
    return p;
  }

  private Linear linear(String name, int out, int in, boolean bias) {
    return new Linear(name, trainable(name + ".weight", randn(rng, out, in).muli(0.5)),
        bias ? trainable(name + ".bias", randn(rng, out).muli(0.3)) : null);
  }

  @Test
  void rmsNormInputAndWeight() {
    RmsNorm n = new RmsNorm("n", trainable("n.weight", randn(rng, 6).muli(0.3).addi(1)), 1e-5);
    INDArray x = randn(rng, 3, 6).muli(2).addi(0.5), r = randn(rng, 3, 6);
    n.forward(x);
    INDArray dx = n.backward(r);
    check("rmsnorm dx", x, dx, () -> probe(n.forward(x), r), 100);
    checkParams("rmsnorm", List.of(n.weight()), () -> probe(n.forward(x), r), 100);
  }

  @Test
  void rmsNormValue() {
    RmsNorm n = new RmsNorm("n", Param.frozen("w", Nd4j.createFromArray(1.0, 2.0)), 0.0);
    INDArray y = n.forward(Nd4j.createFromArray(new double[][] {{3, 4}}));
    double rms = Math.sqrt((9 + 16) / 2.0);
    assertEquals(3 / rms, y.getDouble(0, 0), 1e-12);
    assertEquals(2 * 4 / rms, y.getDouble(0, 1), 1e-12);
  }

  @Test
  void ropeMatchesRotateHalfFormulaAndBackwardIsItsTranspose() {
    Rope rope = new Rope(4, 100.0);
    int[] positions = {0, 3, 7};
    Rope.Tables t = rope.tables(positions, DataType.DOUBLE);
    INDArray x = randn(rng, 3, 8);   // 2 heads of 4
    INDArray y = rope.rotate(x, t, false);
    double[] inv = {1.0, Math.pow(100.0, -0.5)};
    for (int r = 0; r < 3; r++) {
      for (int h = 0; h < 2; h++) {
        for (int i = 0; i < 2; i++) {
          double a = x.getDouble(r, h * 4 + i), b = x.getDouble(r, h * 4 + i + 2);
          double ang = positions[r] * inv[i];
          assertEquals(a * Math.cos(ang) - b * Math.sin(ang), y.getDouble(r, h * 4 + i), 1e-12);
          assertEquals(b * Math.cos(ang) + a * Math.sin(ang), y.getDouble(r, h * 4 + i + 2), 1e-12);
        }
      }
    }
    INDArray probeR = randn(rng, 3, 8);
    INDArray dx = rope.rotate(probeR, t, true);
    check("rope dx", x, dx, () -> probe(rope.rotate(x, t, false), probeR), 100);
  }

  @Test
  void ropeScoresDependOnlyOnRelativePosition() {
    Rope rope = new Rope(6, 10000.0);
    INDArray q = randn(rng, 1, 6), k = randn(rng, 1, 6);
    double s1 = rope.rotate(q, rope.tables(new int[] {5}, DataType.DOUBLE), false)
        .mul(rope.rotate(k, rope.tables(new int[] {2}, DataType.DOUBLE), false)).sumNumber().doubleValue();
    double s2 = rope.rotate(q, rope.tables(new int[] {13}, DataType.DOUBLE), false)
        .mul(rope.rotate(k, rope.tables(new int[] {10}, DataType.DOUBLE), false)).sumNumber().doubleValue();
    assertEquals(s1, s2, 1e-12);
  }

  @Test
  void causalMaskPositionsAndTargets() {
    int[][] mask = {{0, 0, 1, 1, 1}, {1, 1, 2, 2, 0}};
    CausalMask m = CausalMask.of(mask, 0, DataType.DOUBLE);
    assertArrayEquals(new int[] {0, 0, 0, 1, 2, 0, 1, 0, 1, 0}, m.positions());
    int[] targets = m.targets(new int[][] {{9, 9, 4, 5, 6}, {1, 2, 3, -100, 7}});
    assertArrayEquals(new int[] {-100, -100, 5, 6, -100, 2, -100, -100, -100, -100}, targets);
    // row 1, query 3 (segment 2) sees keys 2 and 3 only; padding query 4 sees itself only
    double[] expected = {CausalMask.MASKED, CausalMask.MASKED, 0, 0, CausalMask.MASKED};
    for (int j = 0; j < 5; j++) assertEquals(expected[j], m.bias().getDouble(1, 3, j));
    for (int j = 0; j < 5; j++) assertEquals(j == 4 ? 0 : CausalMask.MASKED, m.bias().getDouble(1, 4, j));
    CausalMask window = CausalMask.of(new int[][] {{1, 1, 1, 1}}, 2, DataType.DOUBLE);
    assertEquals(CausalMask.MASKED, window.bias().getDouble(0, 3, 1));
    assertEquals(0.0, window.bias().getDouble(0, 3, 2));
  }

  private CausalAttention attention(int hidden, int heads, int kvHeads, int hd, boolean bias, Rope rope) {
    return new CausalAttention(linear("q", heads * hd, hidden, bias), linear("k", kvHeads * hd, hidden, bias),
        linear("v", kvHeads * hd, hidden, bias), linear("o", hidden, heads * hd, false), heads, kvHeads, hd, rope);
  }

  @Test
  void groupedQueryAttentionWithRopeCausalAndPaddingMask() {
    int hidden = 6, heads = 4, kvHeads = 2, hd = 4, batch = 2, seq = 4;
    CausalAttention att = attention(hidden, heads, kvHeads, hd, true, new Rope(hd, 50.0));
    CausalMask mask = CausalMask.of(new int[][] {{1, 1, 1, 1}, {0, 1, 1, 0}}, 0, DataType.DOUBLE);
    Rope.Tables t = new Rope(hd, 50.0).tables(mask.positions(), DataType.DOUBLE);
    INDArray x = randn(rng, batch * seq, hidden), r = randn(rng, batch * seq, hidden);
    att.forward(x, mask, t);
    INDArray dx = att.backward(r, true);
    check("gqa dx", x, dx, () -> probe(att.forward(x, mask, t), r), 200);
    List<Param> ps = new ArrayList<>();
    for (LinearLayer l : att.linears()) ps.addAll(l.params());
    for (Param p : ps) p.grad().assign(0);
    att.forward(x, mask, t);
    att.backward(r, false);
    checkParams("gqa", ps, () -> probe(att.forward(x, mask, t), r), 40);
  }

  @Test
  void causalBlocksGiveTheSameAttentionAndPassFiniteDifferences() {
    int hidden = 6, heads = 4, kvHeads = 2, hd = 4, seq = 7;
    CausalAttention att = attention(hidden, heads, kvHeads, hd, true, new Rope(hd, 50.0));
    CausalMask mask = CausalMask.of(new int[][] {{1, 1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 2, 2}}, 0, DataType.DOUBLE);
    Rope.Tables t = new Rope(hd, 50.0).tables(mask.positions(), DataType.DOUBLE);
    INDArray x = randn(rng, 2 * seq, hidden), r = randn(rng, 2 * seq, hidden);
    List<Param> ps = new ArrayList<>();
    for (LinearLayer l : att.linears()) ps.addAll(l.params());
    att.setCausalBlock(seq);                      // one block: the whole T × T square
    INDArray y = att.forward(x, mask, t).dup();
    INDArray dx = att.backward(r, true).dup();
    List<INDArray> grads = new ArrayList<>();
    for (Param p : ps) grads.add(p.grad().dup());
    for (int rows : new int[] {1, 2, 3}) {        // 7 rows in blocks of 1, 2 (last partial), 3
      for (Param p : ps) p.grad().assign(0);
      att.setCausalBlock(rows);
      assertEquals(0.0, att.forward(x, mask, t).sub(y).amaxNumber().doubleValue(), 1e-12, "y, blocks of " + rows);
      assertEquals(0.0, att.backward(r, true).sub(dx).amaxNumber().doubleValue(), 1e-12, "dx, blocks of " + rows);
      for (int i = 0; i < ps.size(); i++)
        assertEquals(0.0, ps.get(i).grad().sub(grads.get(i)).amaxNumber().doubleValue(), 1e-12, ps.get(i).name + ", blocks of " + rows);
    }
    att.setCausalBlock(2);
    att.forward(x, mask, t);
    check("blocked gqa dx", x, att.backward(r, true), () -> probe(att.forward(x, mask, t), r), 200);
  }

  /** Prefix tuning's virtual keys are visible to every block: blocks of 1/2/3 rows equal one block, prefix gradient included. */
  @Test
  void causalBlocksWithPrefixKeysGiveTheSameAttentionAndPassFiniteDifferences() {
    int hidden = 6, heads = 4, kvHeads = 2, hd = 4, seq = 7, nv = 3;
    CausalAttention att = attention(hidden, heads, kvHeads, hd, true, new Rope(hd, 50.0));
    Param prefix = Param.trainable("prompt_embeddings", randn(rng, nv, 2 * kvHeads * hd));
    new ParamSet(List.of(prefix), DataType.DOUBLE);   // gives the prefix its gradient buffer
    att.setPrefix(prefix, 0);
    CausalMask mask = CausalMask.of(new int[][] {{1, 1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 2, 2}}, 0, DataType.DOUBLE, 0, nv);
    Rope.Tables t = new Rope(hd, 50.0).tables(mask.positions(), DataType.DOUBLE);
    INDArray x = randn(rng, 2 * seq, hidden), r = randn(rng, 2 * seq, hidden);
    List<Param> ps = new ArrayList<>(List.of(prefix));
    for (LinearLayer l : att.linears()) ps.addAll(l.params());
    for (Param p : ps) p.grad().assign(0);
    att.setCausalBlock(seq);
    INDArray y = att.forward(x, mask, t).dup();
    INDArray dx = att.backward(r, true).dup();
    List<INDArray> grads = new ArrayList<>();
    for (Param p : ps) grads.add(p.grad().dup());
    assertTrue(grads.get(0).amaxNumber().doubleValue() > 1e-6, "the prefix gets a gradient");
    for (int rows : new int[] {1, 2, 3}) {
      for (Param p : ps) p.grad().assign(0);
      att.setCausalBlock(rows);
      assertEquals(0.0, att.forward(x, mask, t).sub(y).amaxNumber().doubleValue(), 1e-12, "y, blocks of " + rows);
      assertEquals(0.0, att.backward(r, true).sub(dx).amaxNumber().doubleValue(), 1e-12, "dx, blocks of " + rows);
      for (int i = 0; i < ps.size(); i++)
        assertEquals(0.0, ps.get(i).grad().sub(grads.get(i)).amaxNumber().doubleValue(), 1e-12, ps.get(i).name + ", blocks of " + rows);
    }
    att.setCausalBlock(2);
    for (Param p : ps) p.grad().assign(0);
    att.forward(x, mask, t);
    att.backward(r, false);
    checkParams("blocked prefix", List.of(prefix), () -> probe(att.forward(x, mask, t), r), 48);
  }

  @Test
  void attentionIsCausalAndIgnoresPaddingKeys() {
    int hidden = 6, seq = 5;
    Rope rope = new Rope(2, 10000.0);
    CausalAttention att = attention(hidden, 3, 1, 2, false, rope);
    CausalMask mask = CausalMask.of(new int[][] {{1, 1, 1, 1, 0}}, 0, DataType.DOUBLE);
    Rope.Tables t = rope.tables(mask.positions(), DataType.DOUBLE);
    INDArray x = randn(rng, seq, hidden);
    INDArray y1 = att.forward(x, mask, t).dup();
    x.getRow(4).assign(randn(rng, hidden).muli(50));   // padding
    x.getRow(3).assign(randn(rng, hidden));           // the future of rows 0..2
    INDArray y2 = att.forward(x, mask, t);
    assertEquals(0.0, y1.getRows(0, 1, 2).sub(y2.getRows(0, 1, 2)).amaxNumber().doubleValue(), 1e-12);
    assertTrue(y1.getRow(3).sub(y2.getRow(3)).amaxNumber().doubleValue() > 1e-6, "row 3 sees its own change");
  }

  @Test
  void packedSegmentBehavesAsIfAlone() {
    int hidden = 8, hd = 4;
    Rope rope = new Rope(hd, 10000.0);
    CausalAttention att = attention(hidden, 2, 2, hd, true, rope);
    INDArray x = randn(rng, 6, hidden);
    CausalMask packed = CausalMask.of(new int[][] {{1, 1, 1, 2, 2, 2}}, 0, DataType.DOUBLE);
    INDArray both = att.forward(x, packed, rope.tables(packed.positions(), DataType.DOUBLE)).dup();
    CausalMask alone = CausalMask.of(new int[][] {{1, 1, 1}}, 0, DataType.DOUBLE);
    INDArray second = att.forward(x.getRows(3, 4, 5), alone, rope.tables(alone.positions(), DataType.DOUBLE));
    assertEquals(0.0, both.getRows(3, 4, 5).sub(second).amaxNumber().doubleValue(), 1e-12);
  }

  @Test
  void groupedQueryEqualsMultiHeadWithRepeatedKeyValueHeads() {
    int hidden = 8, heads = 4, kvHeads = 2, hd = 2, g = heads / kvHeads;
    Rope rope = new Rope(hd, 10000.0);
    CausalAttention gqa = attention(hidden, heads, kvHeads, hd, true, rope);
    // repeat_kv: query head h reads kv head h / g, so the MHA copy repeats each kv head's rows g times
    Linear k = (Linear) gqa.key().base(), v = (Linear) gqa.value().base();
    INDArray kw = Nd4j.create(DataType.DOUBLE, heads * hd, hidden), vw = kw.dup(), kb = Nd4j.create(DataType.DOUBLE, heads * hd), vb = kb.dup();
    for (int h = 0; h < heads; h++) {
      for (int d = 0; d < hd; d++) {
        int src = (h / g) * hd + d, dst = h * hd + d;
        kw.getRow(dst).assign(k.weight().value().getRow(src));
        vw.getRow(dst).assign(v.weight().value().getRow(src));
        kb.putScalar(dst, k.bias().value().getDouble(src));
        vb.putScalar(dst, v.bias().value().getDouble(src));
      }
    }
    CausalAttention mha = new CausalAttention(gqa.query(), new Linear("k", Param.frozen("kw", kw), Param.frozen("kb", kb)),
        new Linear("v", Param.frozen("vw", vw), Param.frozen("vb", vb)), gqa.output(), heads, heads, hd, rope);
    CausalMask mask = CausalMask.of(new int[][] {{1, 1, 1}, {1, 1, 0}}, 0, DataType.DOUBLE);
    Rope.Tables t = rope.tables(mask.positions(), DataType.DOUBLE);
    INDArray x = randn(rng, 6, hidden);
    INDArray a = gqa.forward(x, mask, t).dup();
    assertEquals(0.0, a.sub(mha.forward(x, mask, t)).amaxNumber().doubleValue(), 1e-12);
  }

  @Test
  void swiGlu() {
    SwiGlu mlp = new SwiGlu(linear("gate", 7, 5, false), linear("up", 7, 5, true), linear("down", 5, 7, false));
    INDArray x = randn(rng, 4, 5), r = randn(rng, 4, 5);
    mlp.forward(x);
    INDArray dx = mlp.backward(r, true);
    check("swiglu dx", x, dx, () -> probe(mlp.forward(x), r), 100);
    List<Param> ps = new ArrayList<>();
    for (LinearLayer l : mlp.linears()) ps.addAll(l.params());
    checkParams("swiglu", ps, () -> probe(mlp.forward(x), r), 60);
  }

  @Test
  void swiGluValue() {
    Linear one = new Linear("i", Param.frozen("i", Nd4j.eye(1).castTo(DataType.DOUBLE)), null);
    SwiGlu mlp = new SwiGlu(one, new Linear("u", Param.frozen("u", Nd4j.createFromArray(new double[][] {{3}})), null), one);
    double g = 0.7, silu = g / (1 + Math.exp(-g));
    assertEquals(silu * 3 * g, mlp.forward(Nd4j.createFromArray(new double[][] {{g}})).getDouble(0, 0), 1e-12);
  }

  @Test
  void chunkedLossMatchesFullSoftmaxAndFiniteDifferences() {
    int n = 7, h = 5, vocab = 11;
    Linear head = linear("lm_head", vocab, h, false);
    INDArray hidden = randn(rng, n, h);
    int[] targets = {3, -100, 10, 0, -100, -100, 4};   // rows 0, 2, 3, 6: not contiguous
    double scale = 0.37;
    LmHeadLoss.Result whole = LmHeadLoss.compute(hidden, targets, head, scale, 100, true);
    INDArray dW = head.weight().grad().dup();
    assertEquals(4, whole.tokens());
    // reference: full logits of the target rows through the existing softmax cross-entropy
    INDArray rows = Nd4j.pullRows(hidden, 1, new int[] {0, 2, 3, 6});
    double ref = CrossEntropy.lossAndGrad(head.forward(rows), new int[] {3, 10, 0, 4}, null, 1);
    assertEquals(ref * 4, whole.lossSum(), 1e-12);
    for (int chunk : new int[] {1, 2, 3}) {
      head.weight().grad().assign(0);
      LmHeadLoss.Result r = LmHeadLoss.compute(hidden, targets, head, scale, chunk, true);
      assertEquals(whole.lossSum(), r.lossSum(), 1e-12, "chunk " + chunk);
      assertEquals(0.0, r.dHidden().sub(whole.dHidden()).amaxNumber().doubleValue(), 1e-12, "chunk " + chunk);
      assertEquals(0.0, head.weight().grad().sub(dW).amaxNumber().doubleValue(), 1e-12, "chunk " + chunk);
    }
    for (int i : new int[] {1, 4, 5}) assertEquals(0.0, whole.dHidden().getRow(i).amaxNumber().doubleValue());
    check("loss dhidden", hidden, whole.dHidden(),
        () -> scale * LmHeadLoss.compute(hidden, targets, head, 0, 2, false).lossSum(), 100);
    head.weight().grad().assign(0);
    LmHeadLoss.compute(hidden, targets, head, scale, 2, true);
    checkParams("loss head", head.params(), () -> scale * LmHeadLoss.compute(hidden, targets, head, 0, 2, false).lossSum(), 100);
    assertThrows(IllegalArgumentException.class, () -> LmHeadLoss.compute(hidden, new int[] {11, 0, 0, 0, 0, 0, 0}, head, 1, 2, false));
  }

  @Test
  void tokenEmbeddingScatterAdd() {
    TokenEmbedding e = new TokenEmbedding("e", trainable("e.weight", randn(rng, 6, 3)));
    int[] ids = {2, 5, 2, 0};
    INDArray r = randn(rng, 4, 3);
    e.forward(ids);
    e.backward(r);
    checkParams("embedding", List.of(e.table()), () -> probe(e.forward(ids), r), 100);
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> e.forward(new int[] {6}));
    assertTrue(bad.getMessage().contains("index 6 outside 0..5"), bad.getMessage());
  }
}
