package dev.peftspark.core.config;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** task: causal_lm keys: they bind, and every bad combination is one error naming the key. */
class CausalLmConfigKeysTest {
  private static JobConfig yaml(String text) { return JobConfigLoader.fromYaml(text, "job.yaml", List.of()); }

  private static String error(String text) {
    return assertThrows(ConfigException.class, () -> yaml(text)).getMessage();
  }

  @Test
  void keysBind() {
    JobConfig c = yaml("""
        task: causal_lm
        model: random
        model_config: conf/models/brown-llama.json
        tokenizer: gpt2
        method: full
        data:
          train: ['demo:brown?exclude=learned']
          format: txt
          lm_format: text
          packing: false
          per_file: true
          max_length: 256
        """);
    assertEquals("causal_lm", c.task());
    assertEquals("conf/models/brown-llama.json", c.modelConfig());
    assertEquals("gpt2", c.tokenizer());
    assertEquals("txt", c.data().format());
    assertTrue(c.data().perFile());
    assertEquals(false, c.data().packing());
    JobConfig i = yaml("task: causal_lm\nmodel: some/dir\ndata:\n  lm_format: instruction\n  prompt_field: q\n"
        + "  response_field: a\n  template: \"Q: {prompt}\\nA: \"\n");
    assertEquals(List.of("instruction", "q", "a", "Q: {prompt}\nA: "),
        List.of(i.data().lmFormat(), i.data().promptField(), i.data().responseField(), i.data().template()));
    assertNull(yaml("task: causal_lm\nmodel: some/dir\n").tokenizer(), "default: the model directory's tokenizer");
    assertTrue(yaml("task: causal_lm\nmodel: some/dir\n").data().packing(), "packing is the default");
    assertEquals("spark", yaml("task: causal_lm\nmodel: some/dir\n").runner(),
        "a causal LM trains on Spark unless runner: local is named, like a classifier");
  }

  @Test
  void badKeysAreNamed() {
    String m = error("task: causal_lm\n");
    assertTrue(m.contains("model") && m.contains("minilm is an encoder"), m);
    m = error("task: causal_lm\nmodel: random\ntokenizer: gpt2\n");
    assertTrue(m.contains("model_config") && m.contains("required with model: random"), m);
    m = error("task: causal_lm\nmodel: random\nmodel_config: c.json\n");
    assertTrue(m.contains("tokenizer") && m.contains("required with model: random"), m);
    m = error("task: causal_lm\nmodel: some/dir\nmodel_config: c.json\n");
    assertTrue(m.contains("model_config") && m.contains("only for model: random"), m);
    m = error("task: causal_lm\nmodel: some/dir\nmethod: head\n");
    assertTrue(m.contains("method") && m.contains("head"), m);
    m = error("task: causal_lm\nmodel: some/dir\ndata:\n  lm_format: chat\n");
    assertTrue(m.contains("data.lm_format") && m.contains("text, instruction, tokenized"), m);
    m = error("task: causal_lm\nmodel: some/dir\ndata:\n  template: 'no placeholder'\n");
    assertTrue(m.contains("data.template") && m.contains("{prompt}"), m);
    m = error("task: causal_lm\nmodel: some/dir\ndata:\n  format: txt\n  lm_format: instruction\n");
    assertTrue(m.contains("data.lm_format") && m.contains("plain-text"), m);
    m = error("task: causal_lm\nmodel: some/dir\ndata:\n  packing: sometimes\n");
    assertTrue(m.contains("data.packing"), m);
    m = error("task: causal_lm\nmodel: some/dir\ndata:\n  prompt_field: ''\n");
    assertTrue(m.contains("data.prompt_field"), m);
    m = error("task: generation\n");
    assertTrue(m.contains("task") && m.contains("classification, causal_lm"), m);
  }

  @Test
  void causalLmKeysAreRefusedForClassification() {
    String m = error("data:\n  format: txt\n");
    assertTrue(m.contains("data.format") && m.contains("causal_lm"), m);
    m = error("model: random\n");
    assertTrue(m.contains("model") && m.contains("causal_lm"), m);
    m = error("tokenizer: gpt2\n");
    assertTrue(m.contains("tokenizer") && m.contains("causal_lm"), m);
  }
}
