package dev.peftspark.core.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The repository's conf/*.yaml and README stay in step with the loader (tests run in core/). */
class RepoConfigFilesTest {
  private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

  @Test
  void everyConfFileLoadsAndIsReadyToTrain() throws IOException {
    List<Path> files;
    try (Stream<Path> s = Files.list(ROOT.resolve("conf"))) {
      files = s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
    }
    assertTrue(files.size() >= 3, "conf/*.yaml: " + files);
    for (Path f : files) {
      JobConfig c = JobConfigLoader.load(f, List.of());
      JobConfigLoader.validateForTrain(c);
      JobConfigLoader.validateForEval(c);
    }
  }

  @Test
  void theThreeSentimentConfigsDifferInMethodAndRate() {
    JobConfig lora = JobConfigLoader.load(ROOT.resolve("conf/minilm-sentiment-lora.yaml"), List.of());
    JobConfig full = JobConfigLoader.load(ROOT.resolve("conf/minilm-sentiment-full.yaml"), List.of());
    JobConfig head = JobConfigLoader.load(ROOT.resolve("conf/minilm-sentiment-head.yaml"), List.of());
    assertEquals(List.of("lora", "full", "head"), List.of(lora.method(), full.method(), head.method()));
    assertEquals(List.of(1e-3, 5e-5, 1e-3), List.of(lora.train().lr(), full.train().lr(), head.train().lr()));
    for (JobConfig c : List.of(lora, full, head)) {
      assertEquals(List.of("demo:sentiment/amazon.json", "demo:sentiment/yelp.json"), c.data().train());
      assertEquals(List.of("demo:sentiment/imdb.json"), c.data().test());
      assertEquals("class", c.data().labelField());
    }
    assertEquals(16.0, lora.lora().alpha());
  }

  /** The forgetting demo: the base never sees learned (adapted to) nor news (forgetting measured there). */
  @Test
  void theBrownConfigsChainPretrainingToAdaptation() {
    JobConfig pre = JobConfigLoader.load(ROOT.resolve("conf/brown-pretrain.yaml"), List.of());
    JobConfig lora = JobConfigLoader.load(ROOT.resolve("conf/brown-learned-lora.yaml"), List.of());
    JobConfig full = JobConfigLoader.load(ROOT.resolve("conf/brown-learned-full.yaml"), List.of());
    assertEquals(List.of("random", "full", "gpt2"), List.of(pre.model(), pre.method(), pre.tokenizer()));
    assertTrue(Files.isRegularFile(ROOT.resolve(pre.modelConfig())), pre.modelConfig());
    assertEquals(List.of("demo:brown?exclude=learned,news"), pre.data().train());
    assertEquals(List.of("demo:brown?genres=news"), pre.data().test());
    for (JobConfig c : List.of(lora, full)) {
      assertEquals(pre.outputDir(), c.model(), "adaptation starts from the pretrained base");
      assertEquals("gpt2", c.tokenizer());
      assertEquals(List.of("demo:brown?genres=learned"), c.data().train());
      assertEquals(pre.data().maxLength(), c.data().maxLength());
      assertEquals(lora.train().maxSteps(), c.train().maxSteps(), "same number of steps for both methods");
    }
    assertEquals(List.of("lora", "full"), List.of(lora.method(), full.method()));
  }

  @Test
  void everyKeyIsDocumentedAndTheReadmeHasTheTable() throws IOException {
    var keys = JobConfigLoader.flatten(JobConfigLoader.DEFAULTS).keySet();
    assertEquals(keys, ConfigDocs.DESCRIPTIONS.keySet());
    String table = ConfigDocs.markdownTable();
    assertFalse(table.contains("| ? |"));
    assertTrue(table.contains("| `train.batch_size` | `32` | examples per optimizer step |"), table);
    assertTrue(table.contains("| `lora.target_modules` | `[query, value]` |"), table);
    String readme = Files.readString(ROOT.resolve("README.md"));
    assertTrue(readme.contains(table), "README.md's config table is out of date; paste ConfigDocs.markdownTable():\n"
        + table);
  }
}
