package dev.peftspark.core.peft.qlora;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.core.model.PackedTensors;
import dev.peftspark.core.model.TinyBert;
import dev.peftspark.core.nn.CrossEntropy;
import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.quant.Nf4;
import dev.peftspark.core.quant.Nf4Tensor;
import dev.peftspark.core.quant.QuantizedLinear;
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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** QLoRA: LoRA on an NF4 base equals LoRA on the dequantized weights, keeps no full-precision weight, saves as LoRA. */
class QloraTest {
  private static final int[][] IDS = {{1, 7, 9, 3, 2}, {1, 30, 2, 0, 0}, {1, 4, 4, 4, 2}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}};
  private static final int[] LABELS = {0, 2, 1};
  private static final List<String> LINEARS = List.of("attention.self.query", "attention.self.key",
      "attention.self.value", "attention.output.dense", "intermediate.dense", "output.dense");

  private static LoraConfig lora(boolean dora) {
    return new LoraConfig(4, 8, 0.0, List.of("all-linear"), false, "none", false, dora);
  }

  /** The base weights with every encoder linear weight replaced by its NF4 round trip. */
  private static Map<String, INDArray> dequantized(Map<String, INDArray> base) {
    Map<String, INDArray> out = new LinkedHashMap<>(base);
    for (int l = 0; l < TinyBert.config().numHiddenLayers(); l++) {
      for (String m : LINEARS) {
        String key = "encoder.layer." + l + "." + m + ".weight";
        INDArray w = base.get(key);
        Nf4Tensor q = Nf4.quantize(w.castTo(DataType.FLOAT).dup('c').data().asFloat());
        float[] back = new float[(int) q.size()];
        Nf4.dequantize(q, back);
        out.put(key, Nd4j.createFromArray(back).reshape(w.shape()));
      }
    }
    return out;
  }

  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void logitsEqualLoraOnTheDequantizedWeights(boolean dora) {
    BertConfig c = TinyBert.config();
    Map<String, INDArray> base = TinyBert.weights(c, 1);
    PeftClassifier q = PeftClassifier.create(Method.QLORA, lora(dora), c, base, 3, Pooling.Mode.MEAN, DataType.FLOAT, 5);
    PeftClassifier l = PeftClassifier.create(Method.LORA, lora(dora), c, dequantized(base), 3, Pooling.Mode.MEAN, DataType.FLOAT, 5);
    assertEquals(l.params().names(), q.params().names());
    assertEquals(0.0, l.params().values().sub(q.params().values()).amaxNumber().doubleValue(), 0.0,
        "same initialisation, DoRA magnitudes from the same (dequantized) weights");
    l.params().values().addi(GradCheck.randn(new SplittableRandom(2), l.params().size()).muli(0.3).castTo(DataType.FLOAT));
    q.params().values().assign(l.params().values());
    INDArray expected = l.model().forward(IDS, MASK), got = q.model().forward(IDS, MASK);
    assertEquals(0.0, expected.sub(got).amaxNumber().doubleValue(), 0.0, "bit-identical logits");
    assertEquals(l.totalCount(), q.totalCount());
    assertEquals(l.trainableCount(), q.trainableCount());
  }

  @Test
  void theBaseKeepsNoFullPrecisionWeight() {
    BertConfig c = TinyBert.config();
    PeftClassifier q = PeftClassifier.create(Method.QLORA, lora(false), c, TinyBert.weights(c, 1), 3, Pooling.Mode.MEAN, DataType.FLOAT, 5);
    long packedBytes = 0, quantized = 0;
    for (LinearLayer l : q.model().encoder().linears()) {
      QuantizedLinear base = (QuantizedLinear) l.base();
      packedBytes += base.packedWeight().storageBytes();
      quantized += base.packedWeight().size();
    }
    assertEquals(2 * (4 * 8 * 8 + 2 * 8 * 12), quantized);
    for (Param p : q.model().params()) {
      boolean linearWeight = LINEARS.stream().anyMatch(m -> p.name.endsWith(m + ".weight"));
      assertTrue(!linearWeight, p.name + " must not exist as a full-precision tensor");
    }
    assertTrue(packedBytes < quantized * 4 / 6, packedBytes + " bytes for " + quantized + " weights");
  }

  @Test
  void gradientsMatchFiniteDifferences() {
    BertConfig c = TinyBert.config();
    PeftClassifier q = PeftClassifier.create(Method.QLORA, lora(false), c, TinyBert.weights(c, 3), 3, Pooling.Mode.CLS, DataType.DOUBLE, 5);
    q.params().values().addi(GradCheck.randn(new SplittableRandom(4), q.params().size()).muli(0.2));
    q.params().zeroGrad();
    BertClassifier m = q.model();
    m.trainStep(IDS, MASK, LABELS, 1.0);
    GradCheck.checkParams("qlora", m.trainableParams(), () -> CrossEntropy.lossAndGrad(m.forward(IDS, MASK), LABELS, null, 1), 2);
  }

  @Test
  void savesAsALoraAdapterAndLoadsOntoAQuantizedBase(@TempDir Path dir) throws Exception {
    BertConfig c = TinyBert.config();
    PeftClassifier q = PeftClassifier.create(Method.QLORA, lora(true), c, TinyBert.weights(c, 6), 2, Pooling.Mode.MEAN, DataType.FLOAT, 5);
    q.params().values().addi(GradCheck.randn(new SplittableRandom(7), q.params().size()).muli(0.2).castTo(DataType.FLOAT));
    AdapterFiles.save(dir, q, List.of("0", "1"), "tiny", "hf/tiny");
    var json = new ObjectMapper();
    assertEquals("LORA", json.readTree(Files.readString(dir.resolve(AdapterFiles.CONFIG))).get("peft_type").asText());
    assertEquals("qlora", json.readTree(Files.readString(dir.resolve(AdapterFiles.EXTRA))).get("method").asText());
    PeftClassifier back = AdapterFiles.load(dir, c, TinyBert.weights(c, 6), DataType.FLOAT);
    assertEquals(Method.QLORA, back.method());
    assertTrue(back.model().encoder().linears().get(0).base() instanceof QuantizedLinear);
    assertEquals(0.0, q.model().forward(IDS, MASK).sub(back.model().forward(IDS, MASK)).amaxNumber().doubleValue(), 0.0);
  }

  /**
   * A cached NF4 base ({@link BertEncoder#packed}) gives the classifier of quantizing a float base: the same NF4
   * bytes, logits and steps (lora.bias all: the biases of the quantized linears train), and keeps no linear weight
   * in float.
   */
  @Test
  void aPackedBaseEqualsQuantizingTheFloatOneAndKeepsLinearWeightsInNf4Only() {
    BertConfig c = TinyBert.config();
    Map<String, INDArray> floats = TinyBert.weights(c, 8);
    PackedTensors packed = BertEncoder.packed(c, floats);
    assertEquals(2 * LINEARS.size(), packed.nf4().size());
    for (String name : packed.keySet()) assertTrue(LINEARS.stream().noneMatch(m -> name.endsWith(m + ".weight")), name);
    assertEquals(floats.size() - 2 * LINEARS.size(), packed.size());

    Map<String, INDArray> before = new LinkedHashMap<>();
    for (String name : packed.keySet()) before.put(name, packed.get(name).dup());
    LoraConfig lora = new LoraConfig(4, 8, 0.0, List.of("all-linear"), false, "all", false, false);
    PeftClassifier today = PeftClassifier.create(Method.QLORA, lora, c, floats, 3, Pooling.Mode.MEAN, DataType.FLOAT, 5);
    PeftClassifier onPacked = PeftClassifier.create(Method.QLORA, lora, c, packed, 3, Pooling.Mode.MEAN, DataType.FLOAT, 5);
    for (int i = 0; i < today.model().encoder().linears().size(); i++) {
      float[] a = new float[(int) ((QuantizedLinear) today.model().encoder().linears().get(i).base()).packedWeight().size()];
      float[] b = new float[a.length];
      ((QuantizedLinear) today.model().encoder().linears().get(i).base()).packedWeight().dequantize(a);
      ((QuantizedLinear) onPacked.model().encoder().linears().get(i).base()).packedWeight().dequantize(b);
      org.junit.jupiter.api.Assertions.assertArrayEquals(a, b);
    }
    assertEquals(today.params().names(), onPacked.params().names());
    assertTrue(today.params().names().stream().anyMatch(n -> n.endsWith("attention.self.query.bias")), "biases train");
    assertEquals(today.totalCount(), onPacked.totalCount());
    for (int step = 0; step < 3; step++) {
      for (PeftClassifier m : List.of(today, onPacked)) {
        m.model().trainStep(IDS, MASK, LABELS, 1.0);
        m.params().values().subi(m.params().grads().mul(0.5));
        m.params().zeroGrad();
      }
    }
    assertEquals(0.0, today.params().values().sub(onPacked.params().values()).amaxNumber().doubleValue(), 0.0);
    assertEquals(0.0, today.model().forward(IDS, MASK).sub(onPacked.model().forward(IDS, MASK)).amaxNumber().doubleValue(), 0.0);
    for (String name : packed.keySet())
      assertEquals(0.0, packed.get(name).sub(before.get(name)).amaxNumber().doubleValue(), 0.0, name + ": the cached base stays as it was");
  }
}
