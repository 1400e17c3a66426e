package dev.peftspark.core.model;

import dev.peftspark.core.io.HfCheckpoint;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.quant.QuantizedLinear;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * QLoRA's base read one tensor at a time ({@link CausalLmConfig#readPacked}) equals today's path (read every tensor
 * in float, build, {@code Qlora.quantizeBase}) bit for bit, and holds its layer linears in NF4 alone.
 */
class PackedTensorsTest {
  private static final int[][] IDS = {{1, 7, 9, 3, 2, 5}, {1, 20, 2, 4, 0, 0}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 0, 0}};

  static Stream<Arguments> checkpoints() {
    Gpt2Config gpt2 = new Gpt2Config(37, 16, 64, 2, 4, 96, 1e-5, true, 0.3);
    return Stream.of(
        Arguments.of("llama untied f32", CausalLmConfig.of(LlamaConfig.llama(37, 64, 96, 2, 4, 2, 32, false)), DataType.FLOAT),
        Arguments.of("llama untied bf16", CausalLmConfig.of(LlamaConfig.llama(37, 64, 96, 2, 4, 2, 32, false)), DataType.BFLOAT16),
        Arguments.of("llama tied f32", CausalLmConfig.of(LlamaConfig.llama(37, 64, 96, 2, 4, 2, 32, true)), DataType.FLOAT),
        Arguments.of("llama tied bf16", CausalLmConfig.of(LlamaConfig.llama(37, 64, 96, 2, 4, 2, 32, true)), DataType.BFLOAT16),
        Arguments.of("qwen2 biases f16", CausalLmConfig.of(TinyLlama.config(false, true)), DataType.HALF),
        Arguments.of("gpt2 f32", CausalLmConfig.of(gpt2), DataType.FLOAT),
        Arguments.of("gpt2 bf16", CausalLmConfig.of(gpt2), DataType.BFLOAT16));
  }

  /** A Hugging Face directory of random weights stored as {@code onDisk} (biases and norms perturbed from 0 and 1). */
  private static Path writeCheckpoint(Path dir, CausalLmConfig shape, DataType onDisk) throws Exception {
    Map<String, INDArray> w = shape.isGpt2() ? shape.randomWeights(DataType.FLOAT, 11) : TinyLlama.weights(shape.llama(), DataType.FLOAT, 11);
    Map<String, INDArray> stored = new LinkedHashMap<>();
    for (var e : w.entrySet()) {
      INDArray t = e.getValue();
      if (e.getKey().endsWith(".bias")) t = t.add(0.1);   // GPT-2's random biases are 0
      stored.put(e.getKey(), t.castTo(onDisk));
    }
    Files.createDirectories(dir);
    SafeTensors.write(dir.resolve(HfCheckpoint.SINGLE), stored, Map.of("format", "pt"));
    return dir;
  }

  private static PeftCausalLm qlora(CausalLmConfig shape, Map<String, INDArray> base) {
    LoraConfig lora = new LoraConfig(4, 8, 0.0, List.of("all-linear"), false, "none", false, false);
    return PeftCausalLm.create(Method.QLORA, lora, null, trainable -> shape.build(base, DataType.FLOAT, trainable),
        DataType.FLOAT, 5);
  }

  /** Three SGD steps; returns the losses. */
  private static double[] train(PeftCausalLm m) {
    double[] losses = new double[3];
    for (int s = 0; s < losses.length; s++) {
      losses[s] = m.model().trainStep(IDS, MASK, null, 1.0);
      m.params().values().subi(m.params().grads().mul(0.5));
      m.params().zeroGrad();
    }
    return losses;
  }

  private static float[] floats(INDArray a) { return a.castTo(DataType.FLOAT).dup('c').data().asFloat(); }

  private static float[] dequantized(LinearLayer l) {
    QuantizedLinear q = (QuantizedLinear) l;
    float[] out = new float[(int) q.packedWeight().size()];
    q.packedWeight().dequantize(out);
    return out;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("checkpoints")
  void readOneTensorAtATimeEqualsQuantizingAFloatLoad(String what, CausalLmConfig shape, DataType onDisk, @TempDir Path tmp)
      throws Exception {
    Path dir = writeCheckpoint(tmp.resolve("model"), shape, onDisk);
    PeftCausalLm today = qlora(shape, HfCheckpoint.readWeights(dir));
    PackedTensors packed = shape.readPacked(dir);
    PeftCausalLm packedModel = qlora(shape, packed);

    List<LinearLayer> a = today.model().linears(), b = packedModel.model().linears();
    assertEquals(a.size(), b.size());
    for (int i = 0; i < a.size(); i++) {
      assertEquals(a.get(i).name(), b.get(i).name());
      assertArrayEquals(dequantized(a.get(i).base()), dequantized(b.get(i).base()), a.get(i).name());
      assertEquals(((QuantizedLinear) a.get(i).base()).packedWeight().storageBytes(),
          ((QuantizedLinear) b.get(i).base()).packedWeight().storageBytes());
    }
    assertEquals(today.totalCount(), packedModel.totalCount());
    assertEquals(today.params().names(), packedModel.params().names());
    assertArrayEquals(floats(today.model().logits(IDS, MASK)), floats(packedModel.model().logits(IDS, MASK)));

    assertArrayEquals(train(today), train(packedModel));
    assertArrayEquals(floats(today.params().values()), floats(packedModel.params().values()));
    assertArrayEquals(floats(today.model().logits(IDS, MASK)), floats(packedModel.model().logits(IDS, MASK)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("checkpoints")
  void keepsLayerLinearsInNf4Only(String what, CausalLmConfig shape, DataType onDisk, @TempDir Path tmp) throws Exception {
    Path dir = writeCheckpoint(tmp.resolve("model"), shape, onDisk);
    CausalLm floatModel = shape.build(HfCheckpoint.readWeights(dir), DataType.FLOAT, false);
    Set<String> linearWeights = floatModel.linears().stream().map(l -> l.name() + ".weight").collect(Collectors.toCollection(TreeSet::new));
    Set<String> others = floatModel.params().stream().map(p -> p.name).filter(n -> !linearWeights.contains(n))
        .collect(Collectors.toCollection(TreeSet::new));

    PackedTensors packed = shape.readPacked(dir);
    assertEquals(linearWeights, new TreeSet<>(packed.nf4().keySet()));
    assertEquals(others, new TreeSet<>(packed.keySet()), "float tensors: embeddings, norms, biases, lm_head");
    for (var e : packed.entrySet()) assertEquals(DataType.FLOAT, e.getValue().dataType(), e.getKey());
    for (String n : linearWeights) assertTrue(packed.get(n) == null && !packed.containsKey(n), n);
    assertTrue(packed.nf4().values().stream().allMatch(q -> q.doubleQuantized()));

    // models built on it share its tensors: nothing is copied per model
    CausalLm m1 = shape.build(packed, DataType.FLOAT, false), m2 = shape.build(packed, DataType.FLOAT, false);
    assertNotSame(m1, m2);
    for (int i = 0; i < m1.linears().size(); i++) {
      assertSame(((QuantizedLinear) m1.linears().get(i)).packedWeight(), ((QuantizedLinear) m2.linears().get(i)).packedWeight());
    }
    for (Param p : m1.params()) assertSame(packed.get(p.name), p.value(), p.name);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("checkpoints")
  void randomBaseQuantizedAsItIsGeneratedEqualsQuantizingTheFloatOne(String what, CausalLmConfig shape, DataType onDisk) {
    if (onDisk != DataType.FLOAT) return;   // the random base has no storage type: once per shape
    PeftCausalLm today = qlora(shape, shape.randomWeights(DataType.FLOAT, 3));
    PackedTensors packed = shape.randomPacked(3);
    assertEquals(today.model().linears().size(), packed.nf4().size());
    PeftCausalLm packedModel = qlora(shape, packed);
    assertArrayEquals(floats(today.model().logits(IDS, MASK)), floats(packedModel.model().logits(IDS, MASK)));
    assertArrayEquals(train(today), train(packedModel));
    assertArrayEquals(floats(today.params().values()), floats(packedModel.params().values()));
  }
}
