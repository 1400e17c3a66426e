package dev.peftspark.core.config;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The config keys of the PEFT methods beyond LoRA: method choices, lora.use_dora, the ia3 section. */
class MethodConfigTest {
  private static JobConfig yaml(String text, String... overrides) {
    return JobConfigLoader.fromYaml(text, "test.yaml", List.of(overrides));
  }

  @Test
  void defaultsArePeftsForBert() {
    JobConfig c = yaml("");
    assertFalse(c.lora().useDora());
    assertEquals(List.of("key", "value", "output.dense"), c.ia3().targetModules());
    assertEquals(List.of("output.dense"), c.ia3().feedforwardModules());
  }

  @Test
  void methodsAndTheirKeysBind() {
    JobConfig c = yaml("method: ia3\nia3:\n  target_modules: [key, value, intermediate.dense]\n"
        + "  feedforward_modules: intermediate.dense\n");
    assertEquals("ia3", c.method());
    assertEquals(List.of("key", "value", "intermediate.dense"), c.ia3().targetModules());
    assertEquals(List.of("intermediate.dense"), c.ia3().feedforwardModules());
    assertTrue(yaml("method: qlora\nlora:\n  use_dora: true\n").lora().useDora());
    assertTrue(yaml("", "lora.use_dora=true", "method=qlora").lora().useDora());
  }

  @Test
  void badValuesNameTheKeyAndTheChoices() {
    String m = assertThrows(ConfigException.class, () -> yaml("method: dora\n")).getMessage();
    assertTrue(m.contains("method") && m.contains("lora, qlora, ia3, prompt_tuning, prefix_tuning, full, head"), m);
    String d = assertThrows(ConfigException.class, () -> yaml("lora:\n  use_dora: maybe\n")).getMessage();
    assertTrue(d.contains("lora.use_dora") && d.contains("true or false"), d);
    String t = assertThrows(ConfigException.class, () -> yaml("ia3:\n  target_modules: []\n")).getMessage();
    assertTrue(t.contains("ia3.target_modules") && t.contains("at least one"), t);
  }
}
