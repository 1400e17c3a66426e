package dev.peftspark.core.config;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** lora.bias / init_lora_weights / layers_to_transform / rank_pattern / alpha_pattern in YAML and --set. */
class LoraOptionsConfigTest {
  private static JobConfig yaml(String text, String... overrides) {
    return JobConfigLoader.fromYaml(text, "test.yaml", List.of(overrides));
  }

  @Test
  void readsEveryOption() {
    JobConfig c = yaml("""
        lora:
          bias: lora_only
          init_lora_weights: gaussian
          layers_to_transform: [0, 3]
          rank_pattern: {query: 16, 'layer\\.0\\..*value': 4}
          alpha_pattern: {query: 32}
        """);
    var l = c.lora();
    assertEquals("lora_only", l.bias());
    assertEquals("gaussian", l.initLoraWeights());
    assertEquals(List.of("0", "3"), l.layersToTransform());
    assertEquals(Map.of("query", "16", "layer\\.0\\..*value", "4"), l.rankPattern());
    assertEquals(Map.of("query", "32"), l.alphaPattern());
    // the round trip through YAML (the run's saved config.yaml) keeps them
    assertEquals(c, JobConfigLoader.fromYaml(JobConfigLoader.toYaml(c), "saved.yaml", List.of()));
  }

  @Test
  void defaultsArePeftsAndSetOverrides() {
    var l = yaml("{}", "lora.bias=all", "lora.rank_pattern={value: 2}").lora();
    assertEquals("all", l.bias());
    assertEquals(Map.of("value", "2"), l.rankPattern());
    var d = JobConfigLoader.DEFAULTS.lora();
    assertEquals("true", d.initLoraWeights());
    assertEquals(List.of(), d.layersToTransform());
    assertEquals(Map.of(), d.alphaPattern());
    assertTrue(JobConfigLoader.flatten(JobConfigLoader.DEFAULTS).containsKey("lora.rank_pattern"), "a map is one key");
  }

  @Test
  void modulesToSaveIsForCausalLms() {
    JobConfig c = yaml("""
        task: causal_lm
        model: some/dir
        lora:
          modules_to_save: [lm_head]
        """);
    assertEquals(List.of("lm_head"), c.lora().modulesToSave());
    assertEquals(c, JobConfigLoader.fromYaml(JobConfigLoader.toYaml(c), "saved.yaml", List.of()));
    assertEquals(List.of(), JobConfigLoader.DEFAULTS.lora().modulesToSave());
    assertMessage("lora: {modules_to_save: [lm_head]}", "lora.modules_to_save: is for task: causal_lm");
  }

  @Test
  void badValuesNameTheKey() {
    assertMessage("lora: {init_lora_weights: pissa}", "lora.init_lora_weights: must be one of true, gaussian");
    assertMessage("lora: {layers_to_transform: [1, x]}", "lora.layers_to_transform: must list layer indices");
    assertMessage("lora: {rank_pattern: {query: 0}}", "lora.rank_pattern.query: must be a rank ≥ 1; got 0");
    assertMessage("lora: {alpha_pattern: {query: -2}}", "lora.alpha_pattern.query: must be a number > 0");
    assertMessage("lora: {rank_pattern: [query]}", "lora.rank_pattern: expected a map such as {query: 4}");
  }

  private static void assertMessage(String text, String expected) {
    var e = assertThrows(ConfigException.class, () -> yaml(text));
    assertTrue(e.getMessage().contains(expected), e.getMessage());
  }
}
