package dev.peftspark.core.peft;

import com.fasterxml.jackson.databind.JsonNode;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.CausalLmConfig;
import dev.peftspark.core.model.Gpt2Config;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.TinyLlama;
import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.train.LmBatch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LoRA's {@code bias} and {@code modules_to_save} on causal LMs: what trains, gradients, files, merge. */
class CausalLoraExtrasTest {
  static final int[][] IDS = {{1, 7, 9, 3, 2, 5}, {0, 0, 4, 11, 28, 6}, {1, 5, 2, 1, 8, 8}};
  static final int[][] MASK = {{1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1}, {1, 1, 1, 2, 2, 2}};

  @BeforeAll
  static void doublePrecision() {
    Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
  }

  static LoraConfig lora(List<String> targets, String bias, List<String> modulesToSave) {
    return new LoraConfig(2, 4, 0.0, targets, false, bias, false, false, Map.of(), Map.of(), List.of(), modulesToSave);
  }

  /** Qwen2 (q/k/v biases), untied head. */
  static CausalLmConfig qwen2() { return CausalLmConfig.of(TinyLlama.config(false, true)); }

  static CausalLmConfig gpt2() { return CausalLmConfig.of(new Gpt2Config(29, 16, 16, 2, 4, 24, 1e-5, true, 0.3)); }

  static PeftCausalLm create(CausalLmConfig shape, Map<String, INDArray> w, LoraConfig cfg, DataType dtype) {
    return PeftCausalLm.create(Method.LORA, cfg, null, t -> shape.build(w, dtype, t), dtype, 3);
  }

  /** Moves the trainable values away from their init (LoRA's B is zero) so every tensor matters. */
  static void perturb(PeftCausalLm m) {
    INDArray v = m.params().values();
    v.addi(GradCheck.randn(new java.util.SplittableRandom(5), v.length()).muli(0.1).castTo(v.dataType()).reshape(v.shape()));
  }

  private static Set<String> names(PeftCausalLm m) { return new TreeSet<>(m.params().names()); }

  @Test
  void loraOnlyTrainsTheAdaptedLinearsBiases() {
    var shape = qwen2();
    var m = create(shape, TinyLlama.weights(shape.llama(), DataType.DOUBLE, 1), lora(List.of("q_proj", "o_proj"), "lora_only", List.of()), DataType.DOUBLE);
    Set<String> biases = new TreeSet<>(names(m).stream().filter(n -> n.endsWith(".bias")).toList());
    // q_proj has a bias in Qwen2, o_proj none; k_proj and v_proj are not adapted
    assertEquals(Set.of("model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.q_proj.bias"), biases);
    gradients(m, "qwen2 lora_only");
  }

  @Test
  void allTrainsEveryBiasOfGpt2LayerNormsIncluded() {
    var shape = gpt2();
    var m = create(shape, shape.randomWeights(DataType.DOUBLE, 2), lora(List.of("c_attn"), "all", List.of()), DataType.DOUBLE);
    Set<String> biases = new TreeSet<>(names(m).stream().filter(n -> n.contains("bias")).toList());
    // per layer: ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj; then ln_f
    assertEquals(2 * 6 + 1, biases.size(), biases.toString());
    assertTrue(biases.contains("transformer.h.1.ln_2.bias") && biases.contains("transformer.ln_f.bias"), biases.toString());
    gradients(m, "gpt2 all");
  }

  @Test
  void modulesToSaveTrainsLmHeadWholeAndLeavesTheBaseAlone() {
    var shape = qwen2();
    Map<String, INDArray> w = TinyLlama.weights(shape.llama(), DataType.DOUBLE, 1);
    INDArray headBefore = w.get("lm_head.weight").dup();
    var m = create(shape, w, lora(List.of("v_proj"), "none", List.of("lm_head", "norm")), DataType.DOUBLE);
    Set<String> whole = new TreeSet<>(names(m).stream().filter(n -> !n.contains("lora_")).toList());
    // PEFT's endswith: "norm" matches model.norm and every layer's input_layernorm / post_attention_layernorm
    assertEquals(Set.of("lm_head.weight", "model.norm.weight", "model.layers.0.input_layernorm.weight",
        "model.layers.0.post_attention_layernorm.weight", "model.layers.1.input_layernorm.weight",
        "model.layers.1.post_attention_layernorm.weight"), whole);
    gradients(m, "modules_to_save");
    assertEquals(headBefore, w.get("lm_head.weight"), "the base tensor is not written (the ParamSet trains a copy)");
  }

  private static void gradients(PeftCausalLm m, String what) {
    perturb(m);
    m.params().zeroGrad();
    m.trainStep(new LmBatch(IDS, MASK, null, 0), 1.0);
    GradCheck.checkParams(what, m.model().trainableParams(), () -> m.model().evaluate(IDS, MASK, null).mean(), 24);
  }

  @Test
  void badModulesToSaveAreNamed() {
    var tied = CausalLmConfig.of(TinyLlama.config(true, false));
    var w = TinyLlama.weights(tied.llama(), DataType.DOUBLE, 1);
    var e = assertThrows(IllegalArgumentException.class, () -> create(tied, w, lora(List.of("q_proj"), "none", List.of("lm_head")), DataType.DOUBLE));
    assertTrue(e.getMessage().contains("tied to the input embeddings"), e.getMessage());
    var none = assertThrows(IllegalArgumentException.class, () -> create(tied, w, lora(List.of("q_proj"), "none", List.of("score")), DataType.DOUBLE));
    assertTrue(none.getMessage().contains("'score' matches no module"), none.getMessage());
  }

  /** PEFT's keys and config; a round trip gives the same logits; merging folds the trained tensors in. */
  @Test
  void savedInPeftLayoutAndMergedWithTheRest(@TempDir Path tmp) throws IOException {
    var shape = qwen2();
    Map<String, INDArray> w = TinyLlama.weights(shape.llama(), DataType.FLOAT, 1);
    var cfg = lora(List.of("q_proj", "v_proj"), "lora_only", List.of("lm_head"));
    var m = create(shape, w, cfg, DataType.FLOAT);
    perturb(m);
    LmAdapterFiles.save(tmp, m, shape, "some/dir", "org/tiny");
    Set<String> keys = new TreeSet<>(SafeTensors.loadAll(tmp.resolve("adapter_model.safetensors")).keySet());
    assertTrue(keys.containsAll(List.of("base_model.model.model.layers.0.self_attn.q_proj.bias",
        "base_model.model.model.layers.1.self_attn.v_proj.bias", "base_model.model.lm_head.weight",
        "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight")), keys.toString());
    assertEquals(2 * 2 * 3 + 1, keys.size(), keys.toString());
    JsonNode c = LmAdapterFilesTest.json(tmp.resolve("adapter_config.json"));
    assertEquals("lora_only", c.get("bias").asText());
    assertEquals(List.of("lm_head"), List.of(c.get("modules_to_save").get(0).asText()));
    var back = LmAdapterFiles.load(tmp, t -> shape.build(w, DataType.FLOAT, t), DataType.FLOAT);
    assertEquals(cfg, back.lora());
    INDArray adapted = m.model().logits(IDS, MASK);
    assertEquals(adapted, back.model().logits(IDS, MASK));
    CausalLm merged = shape.build(CausalMerge.mergedWeights(m.model()), DataType.FLOAT, false);
    double d = adapted.sub(merged.logits(IDS, MASK)).amaxNumber().doubleValue();
    assertTrue(d < 1e-4, "merged differs by " + d);
    CausalLm plain = shape.build(w, DataType.FLOAT, false);
    assertTrue(adapted.sub(plain.logits(IDS, MASK)).amaxNumber().doubleValue() > 1e-2, "the adapter matters");
  }
}
