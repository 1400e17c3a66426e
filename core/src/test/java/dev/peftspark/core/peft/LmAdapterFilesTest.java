package dev.peftspark.core.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.CausalLmConfig;
import dev.peftspark.core.model.Gpt2Config;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.peft.lora.LoraConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Causal-LM adapters in PEFT's layout: keys, config, and bit-identical round trips for every method. */
class LmAdapterFilesTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final int[][] IDS = {{1, 5, 9, 2, 7, 3}, {4, 4, 8, 1, 0, 0}};
  static final int[][] MASK = {{1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 0, 0}};

  static CausalLmConfig llama(boolean tied) {
    return CausalLmConfig.of(new LlamaConfig("llama", 29, 16, 32, 2, 4, 2, 4, 64, 1e-6, 10000.0, null, tied, false,
        false, false, 0, 0.3));
  }

  static CausalLmConfig gpt2() { return CausalLmConfig.of(new Gpt2Config(29, 16, 16, 2, 2, 32, 1e-5, true, 0.3)); }

  static PeftCausalLm.Base base(CausalLmConfig c) {
    Map<String, INDArray> w = c.randomWeights(DataType.FLOAT, 11);
    return t -> c.build(w, DataType.FLOAT, t);
  }

  /** Trainable values made non-trivial (LoRA's B starts at zero), so that a round trip proves something. */
  static void perturb(PeftCausalLm m) {
    SplittableRandom rng = new SplittableRandom(3);
    INDArray v = m.params().values();
    double[] d = new double[(int) v.length()];
    for (int i = 0; i < d.length; i++) d[i] = rng.nextDouble() * 0.2 - 0.1;
    v.addi(Nd4j.createFromArray(d).castTo(v.dataType()));
  }

  static JsonNode json(Path f) throws IOException { return JSON.readTree(f.toFile()); }

  private static void roundTrip(Path dir, CausalLmConfig shape, Method method, LoraConfig lora) throws IOException {
    var b = base(shape);
    var m = PeftCausalLm.create(method, lora, method == Method.IA3 ? PeftCausalLm.defaultIa3(shape) : null, b,
        DataType.FLOAT, 5);
    perturb(m);
    LmAdapterFiles.save(dir, m, shape, "some/dir", "org/tiny");
    var back = LmAdapterFiles.load(dir, b, DataType.FLOAT);
    assertEquals(m.method(), back.method());
    assertEquals(m.params().names(), back.params().names());
    assertEquals(m.params().values(), back.params().values(), method + ": trainable values bit-identical");
    assertEquals(m.model().logits(IDS, MASK), back.model().logits(IDS, MASK), method + ": same logits");
  }

  @Test
  void llamaLoraKeysAndConfig(@TempDir Path tmp) throws IOException {
    var lora = new LoraConfig(4, 8, 0.0, List.of("q_proj", "v_proj", "lm_head"), false, "none", false);
    roundTrip(tmp, llama(false), Method.LORA, lora);
    var keys = new TreeSet<>(SafeTensors.loadAll(tmp.resolve("adapter_model.safetensors")).keySet());
    assertTrue(keys.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), keys.toString());
    assertTrue(keys.contains("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"), keys.toString());
    assertTrue(keys.contains("base_model.model.lm_head.lora_A.weight"), keys.toString());
    assertEquals(2 * 2 * 2 + 2, keys.size());
    JsonNode c = json(tmp.resolve("adapter_config.json"));
    assertEquals("LORA", c.get("peft_type").asText());
    assertEquals("CAUSAL_LM", c.get("task_type").asText());
    assertEquals("org/tiny", c.get("base_model_name_or_path").asText());
    assertEquals(List.of("q_proj", "v_proj", "lm_head"), JSON.convertValue(c.get("target_modules"), List.class));
    assertFalse(c.get("fan_in_fan_out").asBoolean());
    assertTrue(c.get("modules_to_save").isNull());
  }

  @Test
  void gpt2LoraIsFanInFanOut(@TempDir Path tmp) throws IOException {
    roundTrip(tmp, gpt2(), Method.LORA, new LoraConfig(8, 16, 0.0, List.of("c_attn"), false, "none", false));
    var t = SafeTensors.loadAll(tmp.resolve("adapter_model.safetensors"));
    assertEquals(List.of(8L, 16L), List.of(t.get("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape()[0],
        t.get("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape()[1]), "A is [r, in]");
    assertEquals(48, t.get("base_model.model.transformer.h.1.attn.c_attn.lora_B.weight").shape()[0], "B is [out, r]");
    assertTrue(json(tmp.resolve("adapter_config.json")).get("fan_in_fan_out").asBoolean());
  }

  /** NOTES.md's check value: GPT-2 small, c_attn, r=8 -> 294,912 trainable parameters (no weights needed). */
  @Test
  void gpt2SmallCAttnCount() {
    Gpt2Config small = Gpt2Config.small();
    long perLayer = 8L * small.nEmbd() + 3L * small.nEmbd() * 8;
    assertEquals(294_912, small.nLayer() * perLayer);
    var tiny = gpt2();
    var m = PeftCausalLm.create(Method.LORA, new LoraConfig(8, 16, 0.0, List.of("c_attn"), false, "none", false),
        null, base(tiny), DataType.FLOAT, 5);
    assertEquals(tiny.gpt2().nLayer() * (8L * 16 + 3L * 16 * 8), m.trainableCount(), "same formula on the model");
  }

  @Test
  void everyMethodRoundTrips(@TempDir Path tmp) throws IOException {
    var dora = new LoraConfig(4, 8, 0.0, List.of("all-linear"), false, "none", false, true);
    roundTrip(tmp.resolve("dora"), llama(true), Method.LORA, dora);
    var doraKeys = SafeTensors.loadAll(tmp.resolve("dora/adapter_model.safetensors")).keySet();
    assertTrue(doraKeys.contains("base_model.model.model.layers.0.mlp.down_proj.lora_magnitude_vector"), doraKeys.toString());
    roundTrip(tmp.resolve("qlora"), llama(true), Method.QLORA,
        new LoraConfig(4, 8, 0.0, List.of("q_proj", "v_proj"), false, "none", false));
    roundTrip(tmp.resolve("ia3"), llama(true), Method.IA3, null);
    assertEquals("IA3", json(tmp.resolve("ia3/adapter_config.json")).get("peft_type").asText());
    var ia3Keys = SafeTensors.loadAll(tmp.resolve("ia3/adapter_model.safetensors")).keySet();
    assertTrue(ia3Keys.contains("base_model.model.model.layers.1.mlp.down_proj.ia3_l"), ia3Keys.toString());
    roundTrip(tmp.resolve("ia3-gpt2"), gpt2(), Method.IA3, null);
  }

  /** full writes a Hugging Face model directory (config.json + model.safetensors under checkpoint names). */
  @Test
  void fullIsAModelDirectory(@TempDir Path tmp) throws IOException {
    for (CausalLmConfig shape : List.of(llama(false), gpt2())) {
      Path dir = tmp.resolve(shape.isGpt2() ? "gpt2" : "llama");
      roundTrip(dir, shape, Method.FULL, null);
      assertFalse(Files.exists(dir.resolve("adapter_config.json")));
      assertEquals(shape, CausalLmConfig.read(dir.resolve("config.json")));
      var names = SafeTensors.loadAll(dir.resolve("model.safetensors")).keySet();
      assertTrue(names.contains(shape.isGpt2() ? "transformer.h.0.attn.c_attn.weight" : "model.layers.0.self_attn.q_proj.weight"));
    }
  }

  @Test
  void adapterOnAnotherShapeIsRefused(@TempDir Path tmp) throws IOException {
    var lora = new LoraConfig(4, 8, 0.0, List.of("q_proj"), false, "none", false);
    var m = PeftCausalLm.create(Method.LORA, lora, null, base(llama(true)), DataType.FLOAT, 5);
    LmAdapterFiles.save(tmp, m, llama(true), "a", "a");
    var wider = CausalLmConfig.of(new LlamaConfig("llama", 29, 24, 32, 2, 4, 2, 6, 64, 1e-6, 10000.0, null, true,
        false, false, false, 0, 0.3));
    var e = assertThrows(IOException.class, () -> LmAdapterFiles.load(tmp, base(wider), DataType.FLOAT));
    assertTrue(e.getMessage().contains("does not fit this base"), e.getMessage());
  }
}
