package dev.peftspark.core.peft.lora;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.io.TensorInfo;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.model.TinyBert;
import dev.peftspark.core.nn.Dropout;
import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.peftspark.core.nn.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** DoRA (lora.use_dora): PEFT's forward, gradients with the weight norm detached, merge, init and file layout. */
class DoraTest {
  private static final int OUT = 5, IN = 7, R = 3;
  private static final double S = 2.0 / R;

  /** One DoRA layer with random W, b, A, B and m (so every term is non-zero), params packed for gradients. */
  private record Layer(LoraLinear dora, Linear base, Param a, Param b, Param m) {}

  private static Layer layer(double dropout, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    Linear base = new Linear("l", Param.frozen("l.weight", randn(rng, OUT, IN)), Param.frozen("l.bias", randn(rng, OUT)));
    Param a = Param.trainable("l.lora_A.weight", randn(rng, R, IN).muli(0.5));
    Param b = Param.trainable("l.lora_B.weight", randn(rng, OUT, R).muli(0.5));
    Param m = Param.trainable("l.lora_magnitude_vector", randn(rng, OUT).muli(0.3).addi(2.5));
    new ParamSet(List.of(a, b, m), DataType.DOUBLE);
    LoraLinear dora = new LoraLinear(base, a, b, m, S, new Dropout(dropout, seed));
    GradCheck.freeze(dora.dropout());
    return new Layer(dora, base, a, b, m);
  }

  /** The test's own DoRA forward with the norm given (held constant), written from PEFT's formula. */
  private static INDArray reference(Layer l, INDArray x, INDArray norm) {
    INDArray w = l.base.weight().value(), bias = l.base.bias().value();
    INDArray xd = l.dora.dropout().forward(x);             // the frozen mask
    INDArray ratio = l.m.value().div(norm).reshape(1, OUT);
    INDArray lora = xd.mmul(l.a.value().transpose()).mmul(l.b.value().transpose()).muli(S);
    return x.mmul(w.transpose()).addiRowVector(bias)
        .addi(xd.mmul(w.transpose()).mulRowVector(ratio.sub(1))).addi(lora.mulRowVector(ratio));
  }

  private static INDArray norm(Layer l) {
    return l.base.weight().value().add(l.b.value().mmul(l.a.value()).muli(S)).norm2(1);
  }

  @ParameterizedTest
  @ValueSource(doubles = {0.0, 0.4})
  void gradientsTreatTheNormAsConstant(double dropout) {
    Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    Layer l = layer(dropout, 3);
    SplittableRandom rng = new SplittableRandom(4);
    INDArray x = randn(rng, 6, IN), probe = randn(rng, 6, OUT);
    INDArray y = l.dora.forward(x);
    INDArray n0 = norm(l);
    assertEquals(0.0, y.sub(reference(l, x, n0)).amaxNumber().doubleValue(), 1e-12, "forward is PEFT's formula");
    INDArray dx = l.dora.backward(probe, true);
    for (Param p : List.of(l.a, l.b, l.m)) {
      GradCheck.check("dora " + p.name, p.value(), p.grad(), () -> GradCheck.probe(reference(l, x, n0), probe), 50);
    }
    GradCheck.check("dora dx", x, dx, () -> GradCheck.probe(reference(l, x, n0), probe), 50);
  }

  @Test
  void theDetachedGradientIsNotTheFullOne() {
    Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    Layer l = layer(0.0, 5);
    SplittableRandom rng = new SplittableRandom(6);
    INDArray x = randn(rng, 6, IN), probe = randn(rng, 6, OUT);
    l.dora.forward(x);
    l.dora.backward(probe, false);
    // the full derivative (norm recomputed at every point) of one B entry differs: the check above is not vacuous
    double orig = l.b.value().getDouble(0, 0), eps = 1e-6;
    l.b.value().putScalar(0, 0, orig + eps);
    double plus = GradCheck.probe(l.dora.forward(x), probe);
    l.b.value().putScalar(0, 0, orig - eps);
    double minus = GradCheck.probe(l.dora.forward(x), probe);
    l.b.value().putScalar(0, 0, orig);
    double full = (plus - minus) / (2 * eps), detached = l.b.grad().getDouble(0, 0);
    assertTrue(Math.abs(full - detached) > 1e-3 * Math.max(1, Math.abs(full)), full + " vs " + detached);
  }

  @Test
  void mergedWeightGivesTheSameOutput() {
    Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    Layer l = layer(0.0, 7);
    INDArray x = randn(new SplittableRandom(8), 4, IN);
    INDArray merged = l.dora.mergedWeight();
    INDArray expected = x.mmul(merged.transpose()).addiRowVector(l.base.bias().value());
    assertEquals(0.0, l.dora.forward(x).sub(expected).amaxNumber().doubleValue(), 1e-12);
  }

  @Test
  void magnitudeStartsAtTheRowNormsSoTheModelStartsAsTheBase() {
    BertConfig c = TinyBert.config();
    var cfg = new LoraConfig(4, 8, 0.0, List.of("query", "value"), false, "none", false, true);
    PeftClassifier dora = PeftClassifier.create(Method.LORA, cfg, c, TinyBert.weights(c, 1), 2, Pooling.Mode.MEAN, DataType.DOUBLE, 3);
    PeftClassifier head = PeftClassifier.create(Method.HEAD, null, c, TinyBert.weights(c, 1), 2, Pooling.Mode.MEAN, DataType.DOUBLE, 3);
    assertEquals(4, dora.loraLayers().size());
    for (LoraLinear l : dora.loraLayers()) {
      INDArray w = ((Linear) l.base()).weight().value();
      assertEquals(w.norm2(1), l.magnitude().value());
      assertArrayEquals(new long[] {8}, l.magnitude().shape);
    }
    int[][] ids = {{1, 5, 9, 2}}, mask = {{1, 1, 1, 1}};
    assertEquals(0.0, dora.model().forward(ids, mask).sub(head.model().forward(ids, mask)).amaxNumber().doubleValue(), 1e-12);
    assertEquals(4 * (4 * 8 + 8 * 4 + 8) + 2 * 8 + 2, dora.trainableCount(), "A, B and m per target, plus the head");
  }

  @Test
  void savesTheMagnitudeUnderPeftsKey(@TempDir Path dir) throws Exception {
    BertConfig c = TinyBert.config();
    var cfg = new LoraConfig(2, 4, 0.1, List.of("key"), false, "none", false, true);
    PeftClassifier m = PeftClassifier.create(Method.LORA, cfg, c, TinyBert.weights(c, 2), 2, Pooling.Mode.CLS, DataType.FLOAT, 5);
    m.params().values().addi(randn(new SplittableRandom(3), m.params().size()).muli(0.1).castTo(DataType.FLOAT));
    AdapterFiles.save(dir, m, List.of("neg", "pos"), "tiny", "hf/tiny");
    assertTrue(new ObjectMapper().readTree(Files.readString(dir.resolve(AdapterFiles.CONFIG))).get("use_dora").asBoolean());
    Map<String, long[]> keys = new LinkedHashMap<>();
    try (SafeTensors st = SafeTensors.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      for (TensorInfo t : st.tensors()) keys.put(t.name(), t.shape());
    }
    assertArrayEquals(new long[] {8}, keys.get("base_model.model.encoder.layer.1.attention.self.key.lora_magnitude_vector"));
    assertEquals(2 * 3 + 2, keys.size());
    PeftClassifier back = AdapterFiles.load(dir, c, TinyBert.weights(c, 2), DataType.FLOAT);
    assertTrue(back.lora().useDora());
    back.setTraining(false);
    m.setTraining(false);
    int[][] ids = {{1, 5, 9, 2}}, mask = {{1, 1, 1, 1}};
    assertEquals(m.model().forward(ids, mask), back.model().forward(ids, mask));
  }
}
