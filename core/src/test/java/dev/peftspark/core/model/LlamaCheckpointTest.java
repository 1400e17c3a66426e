package dev.peftspark.core.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.core.io.HfCheckpoint;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.optim.Optimizer;
import dev.peftspark.core.peft.lora.Lora;
import dev.peftspark.core.peft.lora.LoraConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hugging Face directories (config.json + safetensors, single or sharded, F32/BF16) written here, loaded, trained. */
class LlamaCheckpointTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int[][] IDS = {{1, 7, 9, 3, 2, 5, 4, 4}, {0, 0, 4, 11, 28, 6, 6, 1}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1, 1, 1}};

  static LlamaConfig tiny(boolean tied) {
    return new LlamaConfig("llama", 29, 16, 24, 2, 4, 2, 4, 64, 1e-5, 10000.0, null, tied, false, false, false, 0, 0.1);
  }

  static void writeDir(Path dir, LlamaConfig c, Map<String, INDArray> weights) throws IOException {
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(c.toJson("float32")));
    SafeTensors.write(dir.resolve(HfCheckpoint.SINGLE), weights, Map.of("format", "pt"));
  }

  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void directoryLoadsAndTrainsALoraStep(boolean tied, @TempDir Path dir) throws IOException {
    LlamaConfig c = tiny(tied);
    Map<String, INDArray> w = LlamaModel.randomWeights(c, DataType.FLOAT, 7);
    assertEquals(!tied, w.containsKey("lm_head.weight"));
    writeDir(dir, c, w);
    LlamaModel loaded = LlamaModel.load(dir, DataType.FLOAT, false);
    assertEquals(c, loaded.config());
    assertEquals(c.parameterCount(), loaded.params().stream().mapToLong(Param::length).sum());
    LlamaModel inMemory = LlamaModel.fromWeights(c, w, DataType.FLOAT, false);
    assertEquals(0.0, loaded.logits(IDS, MASK).sub(inMemory.logits(IDS, MASK)).amaxNumber().doubleValue());

    List<Param> adapters = Lora.inject(loaded, new LoraConfig(4, 8, 0, List.of("q_proj", "v_proj"), false, "none", false), DataType.FLOAT, 3);
    ParamSet ps = new ParamSet(adapters, DataType.FLOAT);
    assertEquals((long) c.numHiddenLayers() * (4 * 16 + 16 * 4 + 4 * 16 + 8 * 4), ps.size());   // q: A, B; v: A, B [kv = 8, r]
    Optimizer opt = Optimizer.create("adamw", ps.size(), Nd4j.ones(DataType.FLOAT, ps.size()), 0.0, 0, 0.9, 0.999, 1e-8);
    double before = loaded.evaluate(IDS, MASK, null).mean();
    assertEquals(Math.log(29), before, 0.2, "random init predicts about uniformly");
    double first = 0;
    for (int step = 0; step < 8; step++) {
      ps.zeroGrad();
      double loss = loaded.trainStep(IDS, MASK, null, 1.0);
      if (step == 0) first = loss;
      assertTrue(Double.isFinite(loss));
      opt.step(ps.values(), ps.grads(), 0.05);
    }
    assertEquals(before, first, 1e-5, "B = 0: the first step sees the base model");
    double after = loaded.evaluate(IDS, MASK, null).mean();
    assertTrue(after < before - 0.05, "LoRA steps lower the loss: " + before + " -> " + after);
    for (Param p : loaded.params()) if (!p.isTrainable()) assertNull(p.grad());
    assertEquals(0.0, loaded.stateDict().get("model.layers.0.self_attn.q_proj.weight")
        .sub(w.get("model.layers.0.self_attn.q_proj.weight")).amaxNumber().doubleValue(), "base weights untouched");
  }

  @Test
  void shardedBf16AndF16Checkpoint(@TempDir Path dir) throws IOException {
    LlamaConfig c = tiny(false);
    Map<String, INDArray> w = LlamaModel.randomWeights(c, DataType.FLOAT, 9);
    Map<String, INDArray> shard1 = new LinkedHashMap<>(), shard2 = new LinkedHashMap<>(), rounded = new LinkedHashMap<>();
    ObjectNode index = JSON.createObjectNode();
    index.putObject("metadata").put("total_size", 0);
    ObjectNode map = index.putObject("weight_map");
    for (var e : w.entrySet()) {
      boolean first = e.getKey().startsWith("model.layers.0.") || e.getKey().startsWith("model.embed");
      DataType half = first ? DataType.BFLOAT16 : DataType.HALF;
      INDArray stored = e.getValue().castTo(half);
      (first ? shard1 : shard2).put(e.getKey(), stored);
      rounded.put(e.getKey(), stored.castTo(DataType.FLOAT));
      map.put(e.getKey(), first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
    }
    Files.writeString(dir.resolve("config.json"), c.toJson("bfloat16").toString());
    SafeTensors.write(dir.resolve("model-00001-of-00002.safetensors"), shard1, null);
    SafeTensors.write(dir.resolve("model-00002-of-00002.safetensors"), shard2, null);
    Files.writeString(dir.resolve(HfCheckpoint.INDEX), index.toString());
    Map<String, INDArray> read = HfCheckpoint.readWeights(dir);
    assertEquals(w.keySet(), read.keySet());
    for (var e : rounded.entrySet()) assertEquals(e.getValue(), read.get(e.getKey()), e.getKey());
    assertNotEquals(w.get("lm_head.weight"), read.get("lm_head.weight"), "halves really were stored");
    LlamaModel m = LlamaModel.load(dir, DataType.FLOAT, false);
    assertEquals(0.0, m.logits(IDS, MASK).sub(LlamaModel.fromWeights(c, rounded, DataType.FLOAT, false).logits(IDS, MASK))
        .amaxNumber().doubleValue());
  }

  @Test
  void badDirectoriesAndConfigsSayWhatIsWrong(@TempDir Path dir) throws IOException {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaModel.load(dir, DataType.FLOAT, false));
    assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("no such file"), e.getMessage());

    LlamaConfig c = tiny(false);
    Map<String, INDArray> w = LlamaModel.randomWeights(c, DataType.FLOAT, 1);
    w.remove("lm_head.weight");
    writeDir(dir, c, w);
    e = assertThrows(IllegalArgumentException.class, () -> LlamaModel.load(dir, DataType.FLOAT, false));
    assertTrue(e.getMessage().contains("no tensor 'lm_head.weight'"), e.getMessage());

    ObjectNode cfg = c.toJson("float32");
    cfg.remove("hidden_size");
    Files.writeString(dir.resolve("config.json"), cfg.toString());
    e = assertThrows(IllegalArgumentException.class, () -> LlamaModel.load(dir, DataType.FLOAT, false));
    assertTrue(e.getMessage().contains(dir.resolve("config.json").toString()) && e.getMessage().contains("'hidden_size'"), e.getMessage());

    cfg = c.toJson("float32");
    cfg.put("model_type", "bert");
    Files.writeString(dir.resolve("config.json"), cfg.toString());
    e = assertThrows(IllegalArgumentException.class, () -> LlamaModel.load(dir, DataType.FLOAT, false));
    assertTrue(e.getMessage().contains("model_type 'bert'"), e.getMessage());

    cfg = c.toJson("float32");
    cfg.put("num_key_value_heads", 3);
    Files.writeString(dir.resolve("config.json"), cfg.toString());
    e = assertThrows(IllegalArgumentException.class, () -> LlamaModel.load(dir, DataType.FLOAT, false));
    assertTrue(e.getMessage().contains("not a multiple of num_key_value_heads 3"), e.getMessage());

    Files.delete(dir.resolve(HfCheckpoint.SINGLE));
    e = assertThrows(IllegalArgumentException.class, () -> HfCheckpoint.readWeights(dir));
    assertTrue(e.getMessage().contains("neither model.safetensors nor model.safetensors.index.json"), e.getMessage());
  }

  @Test
  void configsOfTheFamily() throws IOException {
    // Qwen2: q/k/v biases without an attention_bias field, o_proj without bias, explicit GQA
    LlamaConfig qwen = LlamaConfig.fromJson("qwen", JSON.readTree("""
        {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
         "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
         "rope_theta": 1000000.0, "vocab_size": 151936, "max_position_embeddings": 32768, "tie_word_embeddings": true,
         "use_sliding_window": false, "sliding_window": 32768, "hidden_act": "silu"}"""));
    assertTrue(qwen.attentionBias());
    assertFalse(qwen.outputBias());
    assertEquals(64, qwen.headDim());
    assertEquals(0, qwen.slidingWindow());
    assertEquals(494_032_768L, qwen.parameterCount());   // Qwen2-0.5B
    // TinyLlama-1.1B: untied, 32 heads sharing 4 key/value heads
    LlamaConfig tinyLlama = LlamaConfig.llama(32000, 2048, 5632, 22, 32, 4, 2048, false);
    assertEquals(1_100_048_384L, tinyLlama.parameterCount());
    assertEquals(tinyLlama, LlamaConfig.fromJson("round trip", tinyLlama.toJson("float32")));
    assertEquals(qwen, LlamaConfig.fromJson("round trip", qwen.toJson("bfloat16")));
    // Llama 3.1 rope scaling: high frequencies kept, low ones divided by the factor, a smooth band between
    LlamaConfig l31 = LlamaConfig.fromJson("llama3.1", JSON.readTree("""
        {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "rope_theta": 500000.0,
         "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192, "rope_type": "llama3"}}"""));
    double[] plain = dev.peftspark.core.nn.Rope.invFreq(128, 500000.0), scaled = l31.ropeInvFreq();
    assertEquals(plain[0], scaled[0]);
    assertEquals(plain[63] / 8, scaled[63], 1e-20);
    int band = 0;
    for (int i = 0; i < 64; i++) {
      double ratio = scaled[i] / plain[i];
      assertTrue(ratio <= 1 && ratio >= 0.125 - 1e-12);
      if (ratio < 1 && ratio > 0.125 + 1e-9) band++;
    }
    assertTrue(band > 0, "some frequencies are interpolated");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.fromJson("x.json", JSON.readTree(
        "{\"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 5,"
            + " \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}")));
    assertTrue(e.getMessage().startsWith("x.json: rope_scaling type 'yarn' is not supported"), e.getMessage());
  }

  @Test
  void randomInitIsSeededAndFollowsTheInitializerRange() {
    LlamaConfig c = LlamaConfig.llama(1000, 64, 96, 1, 4, 4, 128, true);
    Map<String, INDArray> a = LlamaModel.randomWeights(c, DataType.FLOAT, 1), b = LlamaModel.randomWeights(c, DataType.FLOAT, 1);
    Map<String, INDArray> other = LlamaModel.randomWeights(c, DataType.FLOAT, 2);
    for (String k : a.keySet()) assertEquals(a.get(k), b.get(k), k);
    assertNotEquals(a.get("model.embed_tokens.weight"), other.get("model.embed_tokens.weight"));
    INDArray emb = a.get("model.embed_tokens.weight");
    assertEquals(0.0, emb.meanNumber().doubleValue(), 1e-3);
    assertEquals(0.02, emb.stdNumber().doubleValue(), 5e-4);
    assertEquals(1.0, a.get("model.norm.weight").minNumber().doubleValue());
    assertEquals(c.parameterCount(), LlamaModel.random(c, DataType.FLOAT, 1, false).params().stream().mapToLong(Param::length).sum());
  }
}
