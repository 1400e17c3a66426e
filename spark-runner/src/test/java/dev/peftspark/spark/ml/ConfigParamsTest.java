package dev.peftspark.spark.ml;

import dev.peftspark.core.config.ConfigDocs;
import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import org.apache.spark.ml.param.Param;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The stages' Params are the YAML config's keys: names, types, docs, defaults and checks come from the config. */
class ConfigParamsTest {
  @Test
  void everyConfigKeyIsAParamOrExcludedWithAReason() {
    var est = new PeftClassifierEstimator();
    Set<String> names = new HashSet<>(Arrays.stream(est.params()).map(Param::name).toList());
    Map<String, Object> defaults = JobConfigLoader.flatten(JobConfigLoader.DEFAULTS);
    for (String key : defaults.keySet()) {
      if (ConfigParams.EXCLUDED.containsKey(key)) {
        assertTrue(!names.contains(ConfigParams.paramName(key)), key + " is excluded but a param");
      } else {
        assertTrue(names.contains(ConfigParams.paramName(key)), key + " has no param");
        Param<?> p = est.getParam(ConfigParams.paramName(key));
        assertTrue(p.doc().startsWith(ConfigDocs.DESCRIPTIONS.get(key)), p.doc());
        Object expected = ConfigParams.toSpark(defaults.get(key));
        if (expected == null) {   // init_adapter: unset unless given
          assertTrue(!est.isDefined(p), key);
          continue;
        }
        Object actual = est.getOrDefault(p);
        if (expected instanceof String[] a) assertArrayEquals(a, (String[]) actual, key);
        else assertEquals(expected, actual, key);
      }
    }
    assertTrue(defaults.keySet().containsAll(ConfigParams.EXCLUDED.keySet()), "an excluded key is not a config key");
    for (String col : List.of("textCol", "labelCol", "predictionCol", "probabilityCol", "embeddingCol")) {
      assertTrue(names.contains(col), col);
    }
    assertEquals("text", est.getTextCol());
    assertEquals("label", est.getLabelCol());
    assertTrue(est.explainParams().contains("lora_r: adapter rank (YAML key lora.r) (default: 8)"), est.explainParams());
  }

  @Test
  void valuesAreCheckedAndConvertedByTheConfigLoader() {
    var est = new PeftClassifierEstimator();
    est.setConfig("lora.r", "16").setConfig("train_lr", 1e-3).setConfig("lora.target_modules", "query,key")
        .setConfig("lora.rank_pattern", Map.of("query", 4)).setConfig("train.seed", 7);
    assertEquals(16, est.getConfig("lora_r"));
    JobConfig cfg = est.config();
    assertEquals(16, cfg.lora().r());
    assertEquals(1e-3, cfg.train().lr());
    assertEquals(List.of("query", "key"), cfg.lora().targetModules());
    assertEquals(Map.of("query", "4"), cfg.lora().rankPattern());
    assertEquals(7L, cfg.train().seed());
    assertEquals("spark", cfg.runner());

    var bad = assertThrows(IllegalArgumentException.class, () -> est.setConfig("lora.r", 0));
    assertEquals("lora.r (param lora_r): must be ≥ 1; got 0", bad.getMessage());
    // Spark's own setter runs the same check
    var viaSpark = assertThrows(IllegalArgumentException.class, () -> est.set(est.getParam("train_optimizer"), "adam"));
    assertTrue(viaSpark.getMessage().contains("train.optimizer (param train_optimizer): must be one of adamw, sgd"),
        viaSpark.getMessage());
    var unknown = assertThrows(IllegalArgumentException.class, () -> est.setConfig("lora.rank", 4));
    assertTrue(unknown.getMessage().contains("unknown config key or param"), unknown.getMessage());
    var excluded = assertThrows(IllegalArgumentException.class, () -> est.setConfig("data.train", "x.jsonl"));
    assertTrue(excluded.getMessage().contains("the training data is the Dataset given to fit"), excluded.getMessage());

    // a cross-key rule is decided on the whole config, at fit
    est.setConfig("train.grad_accum", 3);
    var cross = assertThrows(IllegalArgumentException.class, est::config);
    assertTrue(cross.getMessage().startsWith("train.batch_size (param train_batch_size): must be divisible by"),
        cross.getMessage());
  }

  @Test
  void aJobConfigSetsEveryParamAndComesBackEqual() {
    JobConfig cfg = JobConfigLoader.fromYaml("method: lora\nlora: {r: 4, alpha: 16, use_dora: true}\n"
        + "data: {max_length: 64, label_field: class}\ntrain: {batch_size: 16, lr: 2e-3, max_steps: 5}\n",
        "test", List.of());
    var est = new PeftClassifierEstimator().setConfig(cfg);
    assertEquals("class", est.getLabelCol());
    JobConfig back = est.config();
    assertEquals(cfg.lora(), back.lora());
    assertEquals(cfg.train(), back.train());
    assertEquals(cfg.data().maxLength(), back.data().maxLength());
  }
}
