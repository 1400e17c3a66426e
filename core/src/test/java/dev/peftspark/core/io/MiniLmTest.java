package dev.peftspark.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** Against the real bundled all-MiniLM-L6-v2 (extracted to the machine's cache on first use). */
class MiniLmTest {
  private static Map<String, INDArray> weights;
  private static OnnxModel onnx;

  @BeforeAll
  static void load() throws Exception {
    weights = MiniLm.loadWeights();
    onnx = OnnxModel.read(MiniLm.onnxFile());
  }

  @Test
  void hasEveryBertParameterWithItsShape() {
    assertEquals(101, weights.size()); // 5 embedding tensors + 6 layers × 16
    assertEquals(MiniLm.expectedShapes(MiniLm.config()).keySet(), weights.keySet());
    assertShape("embeddings.word_embeddings.weight", 30522, 384);
    assertShape("embeddings.position_embeddings.weight", 512, 384);
    assertShape("embeddings.token_type_embeddings.weight", 2, 384);
    assertShape("embeddings.LayerNorm.bias", 384);
    assertShape("encoder.layer.5.attention.self.value.weight", 384, 384);
    assertShape("encoder.layer.3.intermediate.dense.weight", 1536, 384); // HF [out, in]
    assertShape("encoder.layer.3.intermediate.dense.bias", 1536);
    assertShape("encoder.layer.0.output.dense.weight", 384, 1536);
    assertShape("encoder.layer.0.attention.output.LayerNorm.weight", 384);
    for (INDArray w : weights.values()) {
      assertEquals(DataType.FLOAT, w.dataType());
      assertEquals('c', w.ordering());
      assertFalse(w.isView());
    }
  }

  @Test
  void parameterCountMatchesTheArchitecture() {
    long count = weights.values().stream().mapToLong(INDArray::length).sum();
    // embeddings 30522·384 + 512·384 + 2·384 + 2·384; per layer 4·(384·384+384) + 2·2·384
    // + (384·1536+1536) + (1536·384+384). No pooler in this export (with it: 22,713,216).
    assertEquals(11_918_592 + 6 * 1_774_464, count);
    assertEquals(22_565_376, count);
  }

  /** Following the graph must agree with the per-layer initializer order documented in NOTES.md. */
  @Test
  void graphMappingAgreesWithInitializerOrder() throws Exception {
    List<String> anonymous = onnx.initializers().stream().map(OnnxInitializer::name)
        .filter(n -> n.startsWith("onnx::MatMul_")).toList();
    assertEquals(36, anonymous.size());
    List<String> byOrder = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      for (String m : List.of("attention.self.query", "attention.self.key", "attention.self.value",
          "attention.output.dense", "intermediate.dense", "output.dense")) {
        byOrder.add("encoder.layer." + i + "." + m + ".weight");
      }
    }
    Map<String, String> byGraph = MiniLm.matMulWeightNames(onnx);
    assertEquals(36, byGraph.size());
    for (int k = 0; k < 36; k++) {
      assertEquals(byOrder.get(k), byGraph.get(anonymous.get(k)), anonymous.get(k));
    }
    assertEquals("encoder.layer.0.attention.self.query.weight", byGraph.get("onnx::MatMul_787"));
  }

  @Test
  void linearWeightsAreTheTransposedOnnxMatrices() throws Exception {
    INDArray onnxIntermediate = onnx.load("onnx::MatMul_798"); // layer 0 intermediate, [384, 1536]
    assertArrayEquals(new long[] {384, 1536}, onnxIntermediate.shape());
    INDArray hf = weights.get("encoder.layer.0.intermediate.dense.weight");
    assertEquals(onnxIntermediate.transpose(), hf);
    assertEquals(onnxIntermediate.getFloat(5, 700), hf.getFloat(700, 5));
  }

  @Test
  void valuesArePlausible() {
    INDArray pad = weights.get("embeddings.word_embeddings.weight").get(NDArrayIndex.point(0), NDArrayIndex.all());
    assertEquals(384, pad.length());
    assertTrue(pad.norm2Number().doubleValue() > 0.01, "token 0's embedding is (nearly) all zeros");
    assertTrue(pad.amaxNumber().doubleValue() < 10, "token 0's embedding has huge values");
    INDArray gamma = weights.get("encoder.layer.2.output.LayerNorm.weight");
    double mean = gamma.meanNumber().doubleValue();
    assertTrue(mean > 0.1 && mean < 3, "LayerNorm weight mean " + mean);
    assertTrue(gamma.stdNumber().doubleValue() > 1e-3, "LayerNorm weight looks untrained (constant)");
    for (INDArray w : weights.values()) {
      assertFalse(w.isInfinite().any() || w.isNaN().any());
    }
  }

  @Test
  void tokenizerJsonIsExtractedAndComplete() throws Exception {
    Path file = MiniLm.tokenizerJson();
    assertEquals(MiniLm.cacheDir().resolve("tokenizer.json").toAbsolutePath(), file);
    assertEquals(711_661, Files.size(file));
    JsonNode json = new ObjectMapper().readTree(file.toFile());
    assertEquals("WordPiece", json.get("model").get("type").textValue());
    assertEquals(30522, json.get("model").get("vocab").size());
    assertEquals(90_387_606, Files.size(MiniLm.onnxFile()));
  }

  private static void assertShape(String name, long... shape) {
    assertArrayEquals(shape, weights.get(name).shape(), name);
  }
}
