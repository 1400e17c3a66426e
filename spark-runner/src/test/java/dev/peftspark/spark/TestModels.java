package dev.peftspark.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.core.io.MiniLm;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import org.nd4j.linalg.api.buffer.DataType;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.peft.PeftClassifier;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * Test fixtures shared by the job and CLI tests: tiny random BERT model directories in Hugging Face layout
 * (fast stand-ins for MiniLM, with MiniLM's real tokenizer), small data files, the offline demo cache.
 */
public final class TestModels {
  public static final Path SHARED_DATA_CACHE = Path.of("/work/shared/data-cache");
  private static boolean cacheConfigured;

  private TestModels() {}

  /**
   * Writes config.json, model.safetensors and tokenizer.json of a random BERT (vocab 30522 so MiniLM's
   * tokenizer fits, {@code layers} layers of width {@code hidden}, 2 heads, 512 positions) into {@code dir}.
   */
  public static Path tinyBertDir(Path dir, int hidden, int layers, long seed) {
    try {
      Files.createDirectories(dir);
      int vocab = 30522, inter = 2 * hidden, positions = 512;
      ObjectMapper json = new ObjectMapper();
      ObjectNode c = json.createObjectNode();
      c.put("_name_or_path", "test/tiny-bert-h" + hidden);
      c.put("model_type", "bert");
      c.put("vocab_size", vocab);
      c.put("hidden_size", hidden);
      c.put("num_hidden_layers", layers);
      c.put("num_attention_heads", 2);
      c.put("intermediate_size", inter);
      c.put("max_position_embeddings", positions);
      c.put("type_vocab_size", 2);
      c.put("layer_norm_eps", 1e-12);
      json.writeValue(dir.resolve("config.json").toFile(), c);

      SplittableRandom rng = new SplittableRandom(seed);
      Map<String, INDArray> w = new LinkedHashMap<>();
      w.put("embeddings.word_embeddings.weight", randn(rng, 1.0, vocab, hidden));
      w.put("embeddings.position_embeddings.weight", randn(rng, 0.1, positions, hidden));
      w.put("embeddings.token_type_embeddings.weight", randn(rng, 0.1, 2, hidden));
      norm(w, rng, "embeddings.LayerNorm", hidden);
      for (int l = 0; l < layers; l++) {
        String p = "encoder.layer." + l + ".";
        for (String m : List.of("attention.self.query", "attention.self.key", "attention.self.value",
            "attention.output.dense")) {
          linear(w, rng, p + m, hidden, hidden);
        }
        norm(w, rng, p + "attention.output.LayerNorm", hidden);
        linear(w, rng, p + "intermediate.dense", inter, hidden);
        linear(w, rng, p + "output.dense", hidden, inter);
        norm(w, rng, p + "output.LayerNorm", hidden);
      }
      SafeTensors.write(dir.resolve("model.safetensors"), w, Map.of("format", "pt"));
      Files.copy(MiniLm.tokenizerJson(), dir.resolve("tokenizer.json"));
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static INDArray randn(SplittableRandom rng, double std, long... shape) {
    long n = 1;
    for (long s : shape) n *= s;
    float[] v = new float[(int) n];
    for (int i = 0; i < v.length; i++) {
      double u1 = rng.nextDouble(), u2 = rng.nextDouble();
      v[i] = (float) (std * Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2));
    }
    return Nd4j.createFromArray(v).reshape(shape);
  }

  private static void linear(Map<String, INDArray> w, SplittableRandom rng, String name, int out, int in) {
    w.put(name + ".weight", randn(rng, 1.0 / Math.sqrt(in), out, in));
    w.put(name + ".bias", randn(rng, 0.1, out));
  }

  private static void norm(Map<String, INDArray> w, SplittableRandom rng, String name, int h) {
    w.put(name + ".weight", randn(rng, 0.1, h).addi(1));
    w.put(name + ".bias", randn(rng, 0.1, h));
  }

  /**
   * Gives every trainable tensor of {@code model} random values, so LoRA's B is non-zero and a save that
   * dropped or swapped a tensor would change the outputs.
   */
  public static void randomizeTrainable(PeftClassifier model, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    for (String name : model.params().names()) {
      Param p = model.params().get(name);
      p.value().assign(randn(rng, 0.05, p.shape).castTo(p.value().dataType()).addi(p.value()));
    }
  }

  /** A JSONL file of {"text", "label"} records. */
  public static Path jsonl(Path file, List<String> texts, List<Integer> labels) {
    ObjectMapper json = new ObjectMapper();
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < texts.size(); i++) {
      ObjectNode n = json.createObjectNode();
      n.put("text", texts.get(i));
      if (labels != null) n.put("label", labels.get(i));
      b.append(n).append('\n');
    }
    try {
      Files.createDirectories(file.toAbsolutePath().getParent());
      Files.writeString(file, b);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  /** Every path under {@code dir}, relative, sorted (for "nothing was left behind" checks). */
  public static List<String> tree(Path dir) {
    if (!Files.exists(dir)) return List.of();
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(p -> !p.equals(dir)).map(p -> dir.relativize(p).toString()).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Points demo data at the pre-fetched tarballs (unless PEFT_SPARK_DATA_CACHE is set) and at a per-run cache
   * folder (unless PEFT_SPARK_CACHE is set), so tests need no network and leave ~/.cache alone.
   */
  public static synchronized void useOfflineDemoCache() {
    if (cacheConfigured) return;
    if (System.getProperty("peft.spark.data.cache") == null && System.getenv("PEFT_SPARK_DATA_CACHE") == null
        && Files.isDirectory(SHARED_DATA_CACHE)) {
      System.setProperty("peft.spark.data.cache", SHARED_DATA_CACHE.toString());
    }
    if (System.getProperty("peft.spark.cache") == null && System.getenv("PEFT_SPARK_CACHE") == null) {
      try {
        Path dir = Files.createTempDirectory("peft-spark-test-cache");
        System.setProperty("peft.spark.cache", dir.toString());
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
          try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
          } catch (IOException ignored) {
            // best effort: a temp folder
          }
        }));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    cacheConfigured = true;
  }

  static final List<String> TOY_WORDS = List.of("the", "cat", "dog", "sat", "ran", "on", "mat", "rug", "a", "big",
      "small");

  /**
   * A tiny random LLaMA (2 layers, width 16, GQA 4/2 heads) in a Hugging Face directory: config.json,
   * model.safetensors and a word-level tokenizer.json for {@link #toySentences}' language.
   */
  public static Path tinyLlamaDir(Path modelDir) throws IOException {
    Files.createDirectories(modelDir);
    StringBuilder vocab = new StringBuilder("\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
    for (int i = 0; i < TOY_WORDS.size(); i++) {
      vocab.append(", \"").append(TOY_WORDS.get(i)).append("\": ").append(i + 3);
    }
    Files.writeString(modelDir.resolve("tokenizer.json"), """
        {"version": "1.0", "truncation": null, "padding": null,
         "added_tokens": [
           {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
           {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
           {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
         "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null,
         "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": false},
         "model": {"type": "WordLevel", "unk_token": "<unk>", "vocab": {VOCAB}}}
        """.replace("VOCAB", vocab));
    Files.writeString(modelDir.resolve("tokenizer_config.json"), "{\"eos_token\": \"</s>\"}");
    LlamaConfig c = new LlamaConfig("llama", 16, 16, 32, 2, 4, 2, 4, 64, 1e-6, 10000.0, null, true, false, false,
        false, 0, 0.3);
    Files.writeString(modelDir.resolve("config.json"), c.toJson("float32").toString());
    SafeTensors.write(modelDir.resolve("model.safetensors"), LlamaModel.randomWeights(c, DataType.FLOAT, 1),
        Map.of("format", "pt"));
    return modelDir;
  }

  /** A toy language: "the|a [big|small] cat|dog sat|ran on the mat|rug". */
  public static List<String> toySentences(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    List<String> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add((r.nextBoolean() ? "the " : "a ") + (r.nextInt(3) == 0 ? (r.nextBoolean() ? "big " : "small ") : "")
          + (r.nextBoolean() ? "cat " : "dog ") + (r.nextBoolean() ? "sat" : "ran") + " on the "
          + (r.nextBoolean() ? "mat" : "rug"));
    }
    return out;
  }
}
