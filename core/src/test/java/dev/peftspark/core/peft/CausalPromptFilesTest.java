package dev.peftspark.core.peft;

import com.fasterxml.jackson.databind.JsonNode;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.CausalLmConfig;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.peft.prompt.PromptConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static dev.peftspark.core.peft.LmAdapterFilesTest.IDS;
import static dev.peftspark.core.peft.LmAdapterFilesTest.MASK;
import static dev.peftspark.core.peft.LmAdapterFilesTest.base;
import static dev.peftspark.core.peft.LmAdapterFilesTest.gpt2;
import static dev.peftspark.core.peft.LmAdapterFilesTest.json;
import static dev.peftspark.core.peft.LmAdapterFilesTest.llama;
import static dev.peftspark.core.peft.LmAdapterFilesTest.perturb;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Prompt and prefix tuning adapters of causal LMs in PEFT's layout: one {@code prompt_embeddings}, PEFT's config. */
class CausalPromptFilesTest {
  private static PeftCausalLm saveAndCheck(Path dir, CausalLmConfig shape, Method method, PromptConfig prompt,
                                           long[] savedShape) throws IOException {
    var b = base(shape);
    var m = PeftCausalLm.create(method, null, null, prompt, b, DataType.FLOAT, 5);
    perturb(m);
    LmAdapterFiles.save(dir, m, shape, "some/dir", "org/tiny");
    Map<String, INDArray> saved = SafeTensors.loadAll(dir.resolve("adapter_model.safetensors"));
    assertEquals(List.of("prompt_embeddings"), List.copyOf(saved.keySet()), "PEFT's one key, no prefix");
    assertArrayEquals(savedShape, saved.get("prompt_embeddings").shape());
    var back = LmAdapterFiles.load(dir, b, DataType.FLOAT);
    assertEquals(method, back.method());
    assertEquals(m.params().values(), back.params().values(), method + ": bit-identical");
    assertEquals(m.model().logits(IDS, MASK), back.model().logits(IDS, MASK), method + ": same logits");
    return m;
  }

  /** Prefix tuning on grouped-query attention: PEFT's token_dim is kvh·hd and num_attention_heads kvh. */
  @Test
  void llamaPrefixTuningWithGqa(@TempDir Path tmp) throws IOException {
    // 2 layers, 4 heads on 2 key/value heads of 4: [nv, 2 · 2 · 2 · 4]
    saveAndCheck(tmp, llama(false), Method.PREFIX_TUNING, PromptConfig.random(5), new long[] {5, 32});
    JsonNode c = json(tmp.resolve("adapter_config.json"));
    assertEquals("PREFIX_TUNING", c.get("peft_type").asText());
    assertEquals("CAUSAL_LM", c.get("task_type").asText());
    assertEquals("org/tiny", c.get("base_model_name_or_path").asText());
    assertEquals(5, c.get("num_virtual_tokens").asInt());
    assertEquals(8, c.get("token_dim").asInt());
    assertEquals(2, c.get("num_attention_heads").asInt());
    assertEquals(2, c.get("num_layers").asInt());
    assertEquals(8, c.get("encoder_hidden_size").asInt());
    assertFalse(c.get("prefix_projection").asBoolean());
    assertEquals(1, c.get("num_transformer_submodules").asInt());
    assertTrue(c.get("modules_to_save").isNull());
    assertEquals("prefix_tuning", json(tmp.resolve("peft_spark.json")).get("method").asText());
  }

  @Test
  void gpt2PromptTuningFromText(@TempDir Path tmp) throws IOException {
    saveAndCheck(tmp, gpt2(), Method.PROMPT_TUNING, new PromptConfig(4, List.of(3, 8), "three eight"), new long[] {4, 16});
    JsonNode c = json(tmp.resolve("adapter_config.json"));
    assertEquals("PROMPT_TUNING", c.get("peft_type").asText());
    assertEquals("CAUSAL_LM", c.get("task_type").asText());
    assertEquals(16, c.get("token_dim").asInt());
    assertEquals(2, c.get("num_attention_heads").asInt());
    assertEquals("TEXT", c.get("prompt_tuning_init").asText());
    assertEquals("three eight", c.get("prompt_tuning_init_text").asText());
  }

  /** A plain PEFT directory (no peft_spark.json) loads onto a model for generation. */
  @Test
  void plainPeftPromptAdapterLoadsIntoAModel(@TempDir Path tmp) throws IOException {
    var shape = llama(true);
    var trained = saveAndCheck(tmp, shape, Method.PROMPT_TUNING, PromptConfig.random(3), new long[] {3, 16});
    Files.delete(tmp.resolve("peft_spark.json"));
    CausalLm fresh = base(shape).build(false);
    CausalLora.load(tmp, fresh, DataType.FLOAT);
    assertEquals(3, fresh.virtualTokens());
    assertEquals(trained.model().logits(IDS, MASK), fresh.logits(IDS, MASK));
  }

  @Test
  void prefixOnAnotherShapeIsRefused(@TempDir Path tmp) throws IOException {
    var m = PeftCausalLm.create(Method.PREFIX_TUNING, null, null, PromptConfig.random(2), base(llama(true)), DataType.FLOAT, 5);
    LmAdapterFiles.save(tmp, m, llama(true), "a", "a");
    var moreKvHeads = CausalLmConfig.of(new LlamaConfig("llama", 29, 16, 32, 2, 4, 4, 4, 64, 1e-6, 10000.0, null, true,
        false, false, false, 0, 0.3));
    var e = assertThrows(IOException.class, () -> LmAdapterFiles.load(tmp, base(moreKvHeads), DataType.FLOAT));
    assertTrue(e.getMessage().contains("'prompt_embeddings' has shape [2, 32]") && e.getMessage().contains("does not fit this base"),
        e.getMessage());
  }

  @Test
  void mergeIsRefusedForPromptLearning() {
    for (Method method : List.of(Method.PROMPT_TUNING, Method.PREFIX_TUNING)) {
      var m = PeftCausalLm.create(method, null, null, PromptConfig.random(2), base(gpt2()), DataType.FLOAT, 5);
      var e = assertThrows(IllegalArgumentException.class, () -> CausalMerge.mergedWeights(m.model()));
      assertTrue(e.getMessage().contains("cannot be merged") && e.getMessage().contains("PEFT defines no merge"), e.getMessage());
    }
  }
}
