package dev.peftspark.core.config;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code train.gradient_checkpointing}: off by default, set from YAML or an override, a non-boolean refused by name. */
class GradientCheckpointingConfigTest {
  private static JobConfig yaml(String text, String... overrides) {
    return JobConfigLoader.fromYaml(text, "job.yaml", List.of(overrides));
  }

  @Test
  void defaultOffSetByYamlOrOverride() {
    assertFalse(yaml("output_dir: runs/a\n").train().gradientCheckpointing());
    assertTrue(yaml("output_dir: runs/a\ntrain: {gradient_checkpointing: true}\n").train().gradientCheckpointing());
    assertTrue(yaml("output_dir: runs/a\n", "train.gradient_checkpointing=true").train().gradientCheckpointing());
  }

  @Test
  void aNonBooleanIsRefusedByName() {
    var e = assertThrows(ConfigException.class, () -> yaml("output_dir: runs/a\ntrain: {gradient_checkpointing: often}\n"));
    assertTrue(e.getMessage().contains("train.gradient_checkpointing"), e.getMessage());
  }
}
