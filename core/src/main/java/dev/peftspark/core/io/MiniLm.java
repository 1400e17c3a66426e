package dev.peftspark.core.io;

import dev.peftspark.core.model.BertConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The pretrained sentence-transformers/all-MiniLM-L6-v2 that ships inside the langchain4j jar, as
 * Hugging Face BertModel parameters (no {@code bert.} prefix, linear weights [out, in]).
 *
 * <p>The ONNX export names embeddings, biases and LayerNorms as BERT does, but its 36 MatMul weights
 * are anonymous ({@code onnx::MatMul_787}, ...). Each gets its name by following the graph: the MatMul
 * that reads it feeds an Add whose other input is the layer's named bias.
 */
public final class MiniLm {
  private static final Logger LOG = LoggerFactory.getLogger(MiniLm.class);

  public static final String ONNX_RESOURCE = "all-minilm-l6-v2.onnx";
  public static final String TOKENIZER_RESOURCE = "all-minilm-l6-v2-tokenizer.json";

  private MiniLm() {}

  public static BertConfig config() { return BertConfig.miniLmL6(); }

  /** {@code <cache root>/models/all-minilm-l6-v2}; see {@link ResourceCache#root()}. */
  public static Path cacheDir() {
    return ResourceCache.root().resolve("models").resolve("all-minilm-l6-v2");
  }

  /** The tokenizer.json, extracted once per machine (verified by size and SHA-256). */
  public static Path tokenizerJson() throws IOException {
    return ResourceCache.extract(TOKENIZER_RESOURCE, cacheDir().resolve("tokenizer.json"));
  }

  /** The ONNX model, extracted once per machine (verified by size and SHA-256). */
  public static Path onnxFile() throws IOException {
    return ResourceCache.extract(ONNX_RESOURCE, cacheDir().resolve("model.onnx"));
  }

  /** All parameters of the bundled model, in {@link #expectedShapes} order. */
  public static Map<String, INDArray> loadWeights() throws IOException {
    return loadWeights(onnxFile());
  }

  /** All parameters of a MiniLM-L6 ONNX export, in {@link #expectedShapes} order. */
  public static Map<String, INDArray> loadWeights(Path onnxFile) throws IOException {
    OnnxModel model = OnnxModel.read(onnxFile);
    Map<String, String> matMulNames = matMulWeightNames(model);
    Map<String, long[]> expected = expectedShapes(config());
    Map<String, INDArray> found = new LinkedHashMap<>();
    List<String> dropped = new ArrayList<>();
    for (OnnxInitializer init : model.initializers()) {
      String name = matMulNames.get(init.name());
      boolean isMatMul = name != null;
      if (name == null) {
        name = stripBert(init.name());
      }
      if (!expected.containsKey(name)) {
        dropped.add(init.name());
        continue;
      }
      if (found.containsKey(name)) {
        throw new OnnxFormatException(onnxFile.toString(), "two initializers map to '" + name + "'");
      }
      INDArray value = init.toINDArray();
      found.put(name, isMatMul ? value.transpose().dup('c') : value); // ONNX [in, out] → HF [out, in]
    }
    LOG.debug("MiniLM: dropped initializers that are not BertModel parameters: {}", dropped);
    return checked(onnxFile, expected, found);
  }

  /**
   * Hugging Face BertModel parameter names and shapes for {@code c}, embeddings first, then per layer
   * the attention (query, key, value, output dense, LayerNorm), intermediate and output blocks.
   */
  public static Map<String, long[]> expectedShapes(BertConfig c) {
    long h = c.hiddenSize();
    long ff = c.intermediateSize();
    Map<String, long[]> out = new LinkedHashMap<>();
    out.put("embeddings.word_embeddings.weight", new long[] {c.vocabSize(), h});
    out.put("embeddings.position_embeddings.weight", new long[] {c.maxPositionEmbeddings(), h});
    out.put("embeddings.token_type_embeddings.weight", new long[] {c.typeVocabSize(), h});
    out.put("embeddings.LayerNorm.weight", new long[] {h});
    out.put("embeddings.LayerNorm.bias", new long[] {h});
    for (int i = 0; i < c.numHiddenLayers(); i++) {
      String p = "encoder.layer." + i + ".";
      for (String proj : List.of("query", "key", "value")) {
        linear(out, p + "attention.self." + proj, h, h);
      }
      linear(out, p + "attention.output.dense", h, h);
      out.put(p + "attention.output.LayerNorm.weight", new long[] {h});
      out.put(p + "attention.output.LayerNorm.bias", new long[] {h});
      linear(out, p + "intermediate.dense", ff, h);
      linear(out, p + "output.dense", h, ff);
      out.put(p + "output.LayerNorm.weight", new long[] {h});
      out.put(p + "output.LayerNorm.bias", new long[] {h});
    }
    return out;
  }

  /**
   * ONNX initializer name → HF weight name for every initializer that a MatMul reads and whose
   * product an Add combines with a named {@code .bias} initializer.
   */
  static Map<String, String> matMulWeightNames(OnnxModel model) throws OnnxFormatException {
    Map<String, String> out = new LinkedHashMap<>();
    for (OnnxNode matMul : model.nodes()) {
      if (!matMul.opType().equals("MatMul")) {
        continue;
      }
      List<String> weights = matMul.inputs().stream().filter(model::hasInitializer).toList();
      if (weights.isEmpty()) {
        continue; // activation × activation (attention scores)
      }
      List<String> biases = new ArrayList<>();
      for (OnnxNode add : model.consumers(matMul.outputs().get(0))) {
        if (add.opType().equals("Add")) {
          add.inputs().stream()
              .filter(in -> model.hasInitializer(in) && in.endsWith(".bias"))
              .forEach(biases::add);
        }
      }
      if (weights.size() != 1 || biases.size() != 1) {
        throw new OnnxFormatException(model.source(), "MatMul node '" + matMul.name() + "' reads initializers "
            + weights + " and feeds bias Adds " + biases + "; expected exactly one of each");
      }
      String weightName = stripBert(biases.get(0)).replaceFirst("\\.bias$", ".weight");
      String previous = out.put(weights.get(0), weightName);
      if (previous != null && !previous.equals(weightName)) {
        throw new OnnxFormatException(model.source(), "initializer '" + weights.get(0)
            + "' is read by MatMuls for both '" + previous + "' and '" + weightName + "'");
      }
    }
    return out;
  }

  private static Map<String, INDArray> checked(Path file, Map<String, long[]> expected,
      Map<String, INDArray> found) throws OnnxFormatException {
    List<String> problems = new ArrayList<>();
    Map<String, INDArray> ordered = new LinkedHashMap<>();
    expected.forEach((name, shape) -> {
      INDArray value = found.get(name);
      if (value == null) {
        problems.add("missing " + name + " " + Arrays.toString(shape));
      } else if (!Arrays.equals(shape, value.shape())) {
        problems.add(name + " has shape " + Arrays.toString(value.shape()) + ", expected " + Arrays.toString(shape));
      } else {
        ordered.put(name, value);
      }
    });
    if (!problems.isEmpty()) {
      throw new OnnxFormatException(file.toString(), "not an all-MiniLM-L6-v2 export: "
          + String.join("; ", problems));
    }
    return ordered;
  }

  private static void linear(Map<String, long[]> out, String prefix, long outFeatures, long inFeatures) {
    out.put(prefix + ".weight", new long[] {outFeatures, inFeatures});
    out.put(prefix + ".bias", new long[] {outFeatures});
  }

  private static String stripBert(String name) {
    return name.startsWith("bert.") ? name.substring("bert.".length()) : name;
  }
}
