package dev.peftspark.spark.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.spark.TestModels;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * train and eval of a causal LM through the CLI: a tiny random LLaMA in a Hugging Face directory (config.json,
 * model.safetensors, a word-level tokenizer.json) and a small text file of a toy language.
 */
class CausalLmCommandTest {
  static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path tmp;
  static Path modelDir, trainFile, testFile;

  @BeforeAll
  static void setUp() throws IOException {
    modelDir = TestModels.tinyLlamaDir(tmp.resolve("tiny-llama"));
    trainFile = tmp.resolve("train.txt");
    testFile = tmp.resolve("test.txt");
    Files.write(trainFile, TestModels.toySentences(120, 1));
    Files.write(testFile, TestModels.toySentences(30, 2));
  }

  private Path config(String name, String extra) throws IOException {
    Path f = tmp.resolve(name + ".yaml");
    Files.writeString(f, """
        task: causal_lm
        runner: local
        model: %s
        output_dir: %s
        data:
          train: [%s]
          test: [%s]
          max_length: 16
        train:
          epochs: 3
          batch_size: 8
          lr: 0.02
          log_every: 100
        """.formatted(modelDir, tmp.resolve(name), trainFile, testFile) + extra);
    return f;
  }

  static JsonNode json(Path f) throws IOException { return JSON.readTree(f.toFile()); }

  @Test
  void trainThenEvalWithAndWithoutTheAdapter() throws IOException {
    Path cfg = config("lora", "lora:\n  target_modules: [q_proj, v_proj, lm_head]\n");
    var r = CombineMergeCommandTest.cli("train", "--config", cfg.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("perplexity"), "the summary shows the causal LM's eval: " + r.out());
    Path out = tmp.resolve("lora");
    for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "peft_spark.json", "metrics.jsonl",
        "eval.json", "report.html", "config.yaml")) {
      assertTrue(Files.isRegularFile(out.resolve(f)), f + " in " + out);
    }
    JsonNode adapter = json(out.resolve("adapter_config.json"));
    assertEquals("CAUSAL_LM", adapter.get("task_type").asText());
    assertTrue(SafeTensors.loadAll(out.resolve("adapter_model.safetensors"))
        .containsKey("base_model.model.lm_head.lora_B.weight"));
    List<String> steps = Files.readAllLines(out.resolve("metrics.jsonl"));
    double first = JSON.readTree(steps.get(0)).get("loss").asDouble();
    double last = JSON.readTree(steps.get(steps.size() - 1)).get("loss").asDouble();
    assertTrue(last < 0.6 * first, "training loss " + first + " -> " + last);

    JsonNode trained = json(out.resolve("eval.json"));
    assertEquals(Math.exp(trained.get("loss").asDouble()), trained.get("perplexity").asDouble(), 1e-9);
    assertTrue(trained.get("tokens").asLong() > 30 * 5, trained.toString());

    Path evalDir = tmp.resolve("eval-adapter");
    var e = CombineMergeCommandTest.cli("eval", "--config", cfg.toString(), "--adapter", out.toString(),
        "--set", "output_dir=" + evalDir);
    assertEquals(0, e.code(), e.err());
    assertTrue(e.out().contains("perplexity"), e.out());
    JsonNode again = json(evalDir.resolve("eval.json"));
    assertEquals(trained.get("loss").asDouble(), again.get("loss").asDouble(), 1e-6, "eval reproduces train's eval");
    assertEquals(trained.get("tokens").asLong(), again.get("tokens").asLong());

    Path baseDir = tmp.resolve("eval-base");
    var b = CombineMergeCommandTest.cli("eval", "--config", cfg.toString(), "--set", "output_dir=" + baseDir);
    assertEquals(0, b.code(), b.err());
    double baseLoss = json(baseDir.resolve("eval.json")).get("loss").asDouble();
    assertTrue(again.get("loss").asDouble() < 0.7 * baseLoss, "adapter " + again + " vs base " + baseLoss);
  }

  /** runner: spark through the CLI: the eval of runner: local's adapter; average sync is refused by its key. */
  @Test
  void sparkRunnerGivesTheLocalRunnersEval() throws IOException {
    Path cfg = config("runners", "");
    double[] loss = new double[2];
    for (int i = 0; i < 2; i++) {
      String runner = i == 0 ? "local" : "spark";
      var r = CombineMergeCommandTest.cli("train", "--config", cfg.toString(), "--set", "runner=" + runner,
          "--set", "spark.master=local[2]", "--set", "spark.partitions=2", "--set", "train.max_steps=4",
          "--set", "output_dir=" + tmp.resolve("runner-" + runner));
      assertEquals(0, r.code(), r.err());
      loss[i] = json(tmp.resolve("runner-" + runner).resolve("eval.json")).get("loss").asDouble();
    }
    assertEquals(loss[0], loss[1], 1e-5);
    var avg = CombineMergeCommandTest.cli("train", "--config", cfg.toString(), "--set", "runner=spark",
        "--set", "distributed.sync=average", "--set", "output_dir=" + tmp.resolve("runner-average"));
    assertTrue(avg.code() != 0 && avg.err().contains("distributed.sync"), avg.err());
    assertFalse(Files.exists(tmp.resolve("runner-average")));
  }

  /** train.gradient_checkpointing reaches the local trainer's model and changes no result. */
  @Test
  void gradientCheckpointingGivesTheSameEval() throws IOException {
    Path cfg = config("ckpt", "");
    double[] loss = new double[2];
    for (int i = 0; i < 2; i++) {
      Path out = tmp.resolve("ckpt-" + i);
      var r = CombineMergeCommandTest.cli("train", "--config", cfg.toString(), "--set", "runner=local",
          "--set", "train.max_steps=4", "--set", "train.gradient_checkpointing=" + (i == 1), "--set", "output_dir=" + out);
      assertEquals(0, r.code(), r.err());
      loss[i] = json(out.resolve("eval.json")).get("loss").asDouble();
    }
    assertEquals(loss[0], loss[1], 1e-6);
  }

  /** method: full from model: random is pretraining; its output is a model directory the next run starts from. */
  @Test
  void pretrainFromRandomThenAdapt() throws IOException {
    Files.copy(modelDir.resolve("config.json"), tmp.resolve("shape.json"));
    Path pre = config("pretrain", "method: full\nmodel_config: " + tmp.resolve("shape.json") + "\ntokenizer: "
        + modelDir.resolve("tokenizer.json") + "\n");
    Files.writeString(pre, Files.readString(pre).replace("model: " + modelDir, "model: random"));
    var r = CombineMergeCommandTest.cli("train", "--config", pre.toString());
    assertEquals(0, r.code(), r.err());
    Path out = tmp.resolve("pretrain");
    assertTrue(Files.isRegularFile(out.resolve("config.json")) && Files.isRegularFile(out.resolve("model.safetensors")));
    assertFalse(Files.exists(out.resolve("adapter_config.json")));

    Path next = tmp.resolve("on-pretrained.yaml");
    Files.writeString(next, Files.readString(config("on-pretrained", "tokenizer: " + modelDir.resolve("tokenizer.json")
        + "\n")).replace("model: " + modelDir, "model: " + out));
    var e = CombineMergeCommandTest.cli("eval", "--config", next.toString(), "--set",
        "output_dir=" + tmp.resolve("eval-pretrained"));
    assertEquals(0, e.code(), e.err());
    assertEquals(json(out.resolve("eval.json")).get("loss").asDouble(),
        json(tmp.resolve("eval-pretrained/eval.json")).get("loss").asDouble(), 1e-6, "the saved base is the trained one");
  }

  @Test
  void badInputIsOneLineAndLeavesNothing() throws IOException {
    Path cfg = config("bad", "tokenizer: gpt3\n");
    var r = CombineMergeCommandTest.cli("train", "--config", cfg.toString());
    assertTrue(r.code() != 0, r.out());
    assertTrue(r.err().contains("tokenizer") && r.err().contains("gpt3"), r.err());
    assertFalse(Files.exists(tmp.resolve("bad")));
  }
}
