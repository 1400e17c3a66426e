package dev.peftspark.spark.job;

import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.CausalLmConfig;
import dev.peftspark.core.model.PackedTensors;
import dev.peftspark.core.peft.PeftCausalLm;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A frozen causal-LM base: its shape and tensors, from a Hugging Face model directory or {@code random} (Hugging
 * Face's initialisation of a config.json, seeded). Loaded once per JVM and storage form and shared read-only by every
 * model built on it, so Spark executors load it themselves and it never travels through the driver.
 *
 * @param name    what the config said (a directory, or "random")
 * @param hfId    PEFT's base_model_name_or_path
 * @param weights float tensors by Hugging Face name, or for {@link BaseStorage#NF4} a {@link PackedTensors}
 * @param dir     the model directory, or null for random
 */
public record CausalLmBase(String name, String hfId, CausalLmConfig shape, Map<String, INDArray> weights, Path dir) {
  public static final String RANDOM = "random";

  private static final Map<String, CausalLmBase> CACHE = new ConcurrentHashMap<>();

  /** The float base (see {@link #load(String, String, long, BaseStorage)}). */
  public static CausalLmBase load(String model, String modelConfig, long seed) throws IOException {
    return load(model, modelConfig, seed, BaseStorage.FLOAT);
  }

  /**
   * @param model       a model directory (local path, file: URI or any Hadoop FileSystem URI) or {@code random}
   * @param modelConfig the config.json for {@code random}
   * @param seed        the initialisation seed for {@code random}
   * @param storage     how the tensors are held (a base is cached per storage form)
   */
  public static CausalLmBase load(String model, String modelConfig, long seed, BaseStorage storage) throws IOException {
    String key = (model.equals(RANDOM) ? RANDOM + "|" + modelConfig + "|" + seed : model) + "|" + storage;
    try {
      return CACHE.computeIfAbsent(key, k -> {
        try {
          if (model.equals(RANDOM)) return random(modelConfig, seed, storage);
          if (!HadoopPaths.isRemote(model)) return directory(HadoopPaths.local(model), storage);
          // hdfs://, s3a://...: each JVM copies the directory once into its local cache, keyed by path and content
          CausalLmBase local = directory(HadoopPaths.cachedModelDir(model), storage);
          return new CausalLmBase(model, local.hfId(), local.shape(), local.weights(), local.dir());
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }

  private static CausalLmBase random(String modelConfig, long seed, BaseStorage storage) throws IOException {
    Path file = HadoopPaths.local(modelConfig);
    if (!Files.isRegularFile(file)) throw new IOException("model_config " + modelConfig + ": no such file");
    CausalLmConfig shape = CausalLmConfig.read(file);
    return new CausalLmBase(RANDOM, RANDOM, shape, switch (storage) {
      case FLOAT -> shape.randomWeights(DataType.FLOAT, seed);
      case NF4 -> shape.randomPacked(seed);
    }, null);
  }

  private static CausalLmBase directory(Path dir, BaseStorage storage) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IOException("model '" + dir + "' is not a model directory (config.json, model.safetensors) nor "
          + "'random'");
    }
    CausalLmConfig shape = CausalLmConfig.read(dir.resolve("config.json"));
    String id = dir.getFileName() == null ? dir.toString() : dir.getFileName().toString();
    var cfg = new com.fasterxml.jackson.databind.ObjectMapper().readTree(dir.resolve("config.json").toFile());
    return new CausalLmBase(dir.toString(), cfg.path("_name_or_path").asText(id), shape, switch (storage) {
      case FLOAT -> CausalLmConfig.readWeights(dir);
      case NF4 -> shape.readPacked(dir);
    }, dir);
  }

  /** Builds models on these tensors (frozen ones shared, never copied). */
  public PeftCausalLm.Base builder() {
    return trainable -> build(trainable);
  }

  private CausalLm build(boolean trainable) { return shape.build(weights, DataType.FLOAT, trainable); }

  /** The model directory's tokenizer.json, or null. */
  public Path tokenizerJson() {
    return dir != null && Files.isRegularFile(dir.resolve("tokenizer.json")) ? dir.resolve("tokenizer.json") : null;
  }
}
