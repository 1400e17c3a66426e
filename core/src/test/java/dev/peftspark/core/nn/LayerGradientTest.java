package dev.peftspark.core.nn;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.SplittableRandom;

import static dev.peftspark.core.nn.GradCheck.check;
import static dev.peftspark.core.nn.GradCheck.checkParams;
import static dev.peftspark.core.nn.GradCheck.probe;
import static dev.peftspark.core.nn.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Each layer's backward against central finite differences, in double precision. */
class LayerGradientTest {
  private final SplittableRandom rng = new SplittableRandom(1234);

  @BeforeAll
  static void doublePrecision() {
    Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
  }

  private Param trainable(String name, INDArray v) {
    Param p = Param.trainable(name, v);
    new ParamSet(List.of(p), DataType.DOUBLE);
    return p;
  }

  @Test
  void linearWeightBiasAndInput() {
    Linear lin = new Linear("l", trainable("l.weight", randn(rng, 5, 7)), trainable("l.bias", randn(rng, 5)));
    INDArray x = randn(rng, 4, 7), r = randn(rng, 4, 5);
    INDArray dx = lin.backward(withForward(lin.forward(x), r), true);
    check("linear dx", x, dx, () -> probe(lin.forward(x), r), 100);
    checkParams("linear", lin.params(), () -> probe(lin.forward(x), r), 100);
  }

  @Test
  void frozenLinearHasNoGradientButPassesInputGradient() {
    Linear lin = new Linear("l", Param.frozen("l.weight", randn(rng, 5, 7)), Param.frozen("l.bias", randn(rng, 5)));
    INDArray x = randn(rng, 4, 7), r = randn(rng, 4, 5);
    lin.forward(x);
    INDArray dx = lin.backward(r, true);
    check("frozen linear dx", x, dx, () -> probe(lin.forward(x), r), 100);
    assertEquals(null, lin.weight().grad());
  }

  @Test
  void layerNorm() {
    LayerNorm ln = new LayerNorm("ln", trainable("ln.weight", randn(rng, 6)), trainable("ln.bias", randn(rng, 6)), 1e-5);
    INDArray x = randn(rng, 3, 6).muli(2).addi(0.5), r = randn(rng, 3, 6);
    ln.forward(x);
    INDArray dx = ln.backward(r);
    check("layernorm dx", x, dx, () -> probe(ln.forward(x), r), 100);
    ln.gamma().grad().assign(0);
    ln.beta().grad().assign(0);
    ln.forward(x);
    ln.backward(r);
    checkParams("layernorm", List.of(ln.gamma(), ln.beta()), () -> probe(ln.forward(x), r), 100);
  }

  @Test
  void gelu() {
    Gelu g = new Gelu();
    INDArray x = randn(rng, 4, 9).muli(2), r = randn(rng, 4, 9);
    g.forward(x);
    INDArray dx = g.backward(r);
    check("gelu dx", x, dx, () -> probe(new Gelu().forward(x), r), 100);
  }

  @Test
  void geluMatchesErfDefinition() {
    INDArray x = Nd4j.createFromArray(-3.0, -1.0, -0.1, 0.0, 0.5, 2.0).reshape(1, 6);
    INDArray y = new Gelu().forward(x);
    // GELU(x) = x Φ(x); Φ values from the standard normal table
    double[] phi = {0.0013498980316301, 0.15865525393145707, 0.460172162722971, 0.5, 0.6914624612740131, 0.9772498680518208};
    for (int i = 0; i < 6; i++) assertEquals(x.getDouble(0, i) * phi[i], y.getDouble(0, i), 1e-12);
  }

  @Test
  void selfAttentionWithPaddingMask() {
    int batch = 2, seq = 4, hidden = 6, heads = 2;
    SelfAttention att = new SelfAttention(
        linear("q", hidden), linear("k", hidden), linear("v", hidden), linear("o", hidden), heads);
    INDArray x = randn(rng, batch * seq, hidden), r = randn(rng, batch * seq, hidden);
    int[][] mask = {{1, 1, 1, 1}, {1, 1, 0, 0}};
    INDArray bias = maskBias(mask);
    att.forward(x, bias, batch, seq);
    INDArray dx = att.backward(r, true);
    check("attention dx", x, dx, () -> probe(att.forward(x, bias, batch, seq), r), 200);
    List<Param> ps = new java.util.ArrayList<>();
    for (LinearLayer l : att.linears()) ps.addAll(l.params());
    checkParams("attention", ps, () -> probe(att.forward(x, bias, batch, seq), r), 60);
  }

  @Test
  void paddedKeysDoNotInfluenceRealTokens() {
    int batch = 1, seq = 4, hidden = 6, heads = 2;
    SelfAttention att = new SelfAttention(linear("q", hidden), linear("k", hidden), linear("v", hidden), linear("o", hidden), heads);
    INDArray x = randn(rng, seq, hidden);
    INDArray bias = maskBias(new int[][] {{1, 1, 0, 0}});
    INDArray y1 = att.forward(x, bias, batch, seq).dup();
    x.getRow(3).assign(randn(rng, hidden).muli(100));
    INDArray y2 = att.forward(x, bias, batch, seq);
    assertEquals(0.0, y1.getRows(0, 1).sub(y2.getRows(0, 1)).amaxNumber().doubleValue(), 1e-12);
  }

  @Test
  void embeddings() {
    Embeddings emb = new Embeddings(trainable("w", randn(rng, 11, 6)), trainable("p", randn(rng, 8, 6)),
        trainable("t", randn(rng, 2, 6)),
        new LayerNorm("ln", trainable("ln.weight", randn(rng, 6)), trainable("ln.bias", randn(rng, 6)), 1e-12));
    int[][] ids = {{1, 5, 5, 2}, {3, 10, 0, 0}};
    INDArray r = randn(rng, 8, 6);
    emb.forward(ids);
    emb.backward(r);
    checkParams("embeddings", List.of(emb.word(), emb.position(), emb.tokenType(), emb.norm().gamma(), emb.norm().beta()),
        () -> probe(emb.forward(ids), r), 100);
  }

  @Test
  void pooling() {
    int[][] mask = {{1, 1, 1, 0}, {1, 0, 0, 0}};
    for (Pooling.Mode mode : Pooling.Mode.values()) {
      Pooling pool = new Pooling(mode);
      INDArray h = randn(rng, 8, 5), r = randn(rng, 2, 5);
      pool.forward(h, mask, DataType.DOUBLE);
      INDArray dh = pool.backward(r);
      check("pooling " + mode + " dh", h, dh, () -> probe(pool.forward(h, mask, DataType.DOUBLE), r), 100);
    }
    INDArray h = randn(rng, 8, 5);
    INDArray mean = new Pooling(Pooling.Mode.MEAN).forward(h, mask, DataType.DOUBLE);
    INDArray expected = h.getRows(0, 1, 2).mean(0);
    assertEquals(0.0, mean.getRow(0).sub(expected).amaxNumber().doubleValue(), 1e-12);
  }

  @Test
  void crossEntropy() {
    INDArray logits = randn(rng, 4, 3);
    int[] labels = {0, 2, 1, 2};
    INDArray d = Nd4j.create(DataType.DOUBLE, 4, 3);
    CrossEntropy.lossAndGrad(logits, labels, d, 0.5);
    check("cross-entropy dlogits", logits, d, () -> 0.5 * CrossEntropy.lossAndGrad(logits, labels, null, 1), 100);
    INDArray uniform = Nd4j.zeros(DataType.DOUBLE, 2, 4);
    assertEquals(Math.log(4), CrossEntropy.lossAndGrad(uniform, new int[] {1, 3}, null, 1), 1e-12);
  }

  @Test
  void dropoutMaskAndScale() {
    Dropout d = new Dropout(0.25, 3);
    INDArray x = Nd4j.ones(DataType.DOUBLE, 200, 50);
    INDArray y = d.forward(x);
    double kept = y.neq(0).castTo(DataType.DOUBLE).meanNumber().doubleValue();
    assertEquals(0.75, kept, 0.02);
    assertEquals(1.0 / 0.75, y.maxNumber().doubleValue(), 1e-12);
    assertEquals(1.0, y.meanNumber().doubleValue(), 0.03);
    d.setTraining(false);
    assertEquals(x, d.forward(x));
  }

  private static INDArray withForward(INDArray ignored, INDArray r) { return r; }

  private Linear linear(String name, int h) {
    return new Linear(name, trainable(name + ".weight", randn(rng, h, h).muli(0.5)), trainable(name + ".bias", randn(rng, h)));
  }

  static INDArray maskBias(int[][] mask) {
    double[] b = new double[mask.length * mask[0].length];
    for (int i = 0; i < mask.length; i++) for (int t = 0; t < mask[0].length; t++) b[i * mask[0].length + t] = mask[i][t] == 1 ? 0 : -1e9;
    return Nd4j.createFromArray(b).reshape(mask.length, mask[0].length);
  }
}
