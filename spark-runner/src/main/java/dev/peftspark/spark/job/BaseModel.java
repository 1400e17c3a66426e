package dev.peftspark.spark.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.io.MiniLm;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.core.model.PackedTensors;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A frozen base encoder: its shape, its tensors under Hugging Face BertModel names, and its tokenizer. Loaded once
 * per JVM and storage form and shared (read-only) by every model built on it.
 *
 * @param name    what the config said ({@code minilm} or a directory)
 * @param hfId    the Hugging Face id written as base_model_name_or_path
 * @param weights float tensors, or for {@link BaseStorage#NF4} a {@link PackedTensors}
 */
public record BaseModel(String name, String hfId, BertConfig config, Map<String, INDArray> weights, Path tokenizer) {
  public static final String MINILM = "minilm";

  private static final Map<String, BaseModel> CACHE = new ConcurrentHashMap<>();

  /** The float base (see {@link #load(String, BaseStorage)}). */
  public static BaseModel load(String model) throws IOException { return load(model, BaseStorage.FLOAT); }

  /**
   * The built-in {@code minilm}, or a Hugging Face BERT directory (config.json, model.safetensors, tokenizer.json)
   * as a local path or any Hadoop FileSystem URI. Loaded once per JVM and storage form: executors call this
   * themselves, so the base never travels through the driver. For NF4 the float tensors read are dropped once
   * quantized (a BERT-size encoder is read whole, then packed).
   */
  public static BaseModel load(String model, BaseStorage storage) throws IOException {
    try {
      return CACHE.computeIfAbsent(model + "|" + storage, key -> {
        try {
          BaseModel f = CACHE.get(model + "|" + BaseStorage.FLOAT);
          if (f == null) f = floats(model);   // not cached: dropped once packed
          return storage == BaseStorage.FLOAT ? f
              : new BaseModel(f.name(), f.hfId(), f.config(), BertEncoder.packed(f.config(), f.weights()), f.tokenizer());
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      });
    } catch (java.io.UncheckedIOException e) {
      throw e.getCause();
    }
  }

  private static BaseModel floats(String m) throws IOException {
    if (m.equals(MINILM)) return miniLm();
    if (!HadoopPaths.isRemote(m)) return directory(HadoopPaths.local(m));
    // hdfs://, s3a://...: each JVM copies the directory once into its local cache, keyed by path and content
    BaseModel local = directory(HadoopPaths.cachedModelDir(m));
    return new BaseModel(m, local.hfId(), local.config(), local.weights(), local.tokenizer());
  }

  private static BaseModel miniLm() throws IOException {
    return new BaseModel(MINILM, "sentence-transformers/all-MiniLM-L6-v2", MiniLm.config(), MiniLm.loadWeights(),
        MiniLm.tokenizerJson());
  }

  private static BaseModel directory(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IOException("model '" + dir + "' is neither the built-in 'minilm' nor a model directory");
    }
    for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json"}) {
      if (!Files.isRegularFile(dir.resolve(f))) throw new IOException("model directory " + dir + " has no " + f);
    }
    JsonNode c = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
    BertConfig cfg = new BertConfig(c.path("vocab_size").asInt(30522), c.path("hidden_size").asInt(768),
        c.path("num_hidden_layers").asInt(12), c.path("num_attention_heads").asInt(12),
        c.path("intermediate_size").asInt(3072), c.path("max_position_embeddings").asInt(512),
        c.path("type_vocab_size").asInt(2), c.path("layer_norm_eps").asDouble(1e-12));
    Map<String, INDArray> weights = new LinkedHashMap<>();
    for (var e : SafeTensors.loadAll(dir.resolve("model.safetensors")).entrySet()) {
      weights.put(e.getKey().replaceFirst("^bert\\.", ""), e.getValue());   // BertFor* checkpoints prefix "bert."
    }
    return new BaseModel(dir.toString(), c.path("_name_or_path").asText(dir.getFileName().toString()), cfg, weights,
        dir.resolve("tokenizer.json"));
  }
}
