package dev.peftspark.spark.dist;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.config.ConfigException;
import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.PackedTensors;
import dev.peftspark.core.quant.QuantizedLinear;
import dev.peftspark.core.train.LmBatch;
import dev.peftspark.core.train.StepMetrics;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.spark.TestModels;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.spark.job.BaseStorage;
import dev.peftspark.spark.job.CausalLmBase;
import dev.peftspark.spark.job.CausalLmJob;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code runner: spark} for a causal LM equals {@code runner: local} on the same global batches: a tiny random
 * LLaMA, padded rows of different lengths (so the partitions hold different numbers of target tokens and only
 * the global token count as denominator gives the local step), 2 partitions on local[2].
 */
class CausalLmSparkTest {
  @TempDir static Path tmp;
  static Path modelDir, trainFile, testFile;

  @BeforeAll
  static void setUp() throws IOException {
    modelDir = TestModels.tinyLlamaDir(tmp.resolve("tiny-llama"));
    trainFile = tmp.resolve("train.txt");
    testFile = tmp.resolve("test.txt");
    Files.write(trainFile, TestModels.toySentences(60, 1));
    Files.write(testFile, TestModels.toySentences(20, 2));
  }

  private static JobConfig config(String name, String runner, String... more) {
    List<String> sets = new ArrayList<>(List.of("runner=" + runner, "output_dir=" + tmp.resolve(name),
        "spark.master=local[2]", "spark.partitions=2"));
    sets.addAll(List.of(more));
    return JobConfigLoader.fromYaml("""
        task: causal_lm
        model: %s
        data:
          train: [%s]
          test: [%s]
          max_length: 16
          packing: false
        train:
          epochs: 2
          max_steps: 8
          batch_size: 9
          grad_accum: 3
          lr: 0.01
          log_every: 100
        lora:
          r: 4
          alpha: 8
          target_modules: [q_proj, v_proj, lm_head]
        """.formatted(modelDir, trainFile, testFile), "test", sets);
  }

  private record Run(TrainSummary summary, List<StepMetrics> steps, Map<String, INDArray> adapter, double evalLoss) {}

  private static Run train(JobConfig cfg) throws Exception {
    List<StepMetrics> steps = new ArrayList<>();
    TrainListener record = new TrainListener() {
      @Override public void onStep(StepMetrics m) { steps.add(m); }
    };
    TrainSummary s = cfg.runner().equals("spark")
        ? CausalLmJob.train(cfg, record, new LmSparkFitter(TestSpark.context()))
        : CausalLmJob.train(cfg, record);
    Path out = Path.of(cfg.outputDir());
    double eval = new ObjectMapper().readTree(out.resolve("eval.json").toFile()).get("loss").asDouble();
    return new Run(s, steps, SafeTensors.loadAll(out.resolve("adapter_model.safetensors")), eval);
  }

  /** Spark's 8 steps, adapter and eval loss equal the local trainer's (≤ 1e-5), and the adapter moved. */
  private static void assertSameTraining(Run local, Run spark, String what) {
    assertEquals(8, spark.steps().size(), what);
    for (int i = 0; i < 8; i++) {
      assertEquals(local.steps().get(i).loss(), spark.steps().get(i).loss(), 1e-5, what + " step " + (i + 1));
    }
    double diff = maxDiff(local.adapter(), spark.adapter());
    assertTrue(diff < 1e-5, what + ": adapters differ by " + diff);
    // the adapter moved: equality is not of two untrained adapters
    assertTrue(local.steps().get(7).loss() < local.steps().get(0).loss() - 0.05, local.steps().toString());
    assertEquals(local.evalLoss(), spark.evalLoss(), 1e-5, what + " eval loss");
  }

  private static double maxDiff(Map<String, INDArray> a, Map<String, INDArray> b) {
    assertEquals(a.keySet(), b.keySet());
    double max = 0;
    for (String k : a.keySet()) {
      max = Math.max(max, a.get(k).castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE)
          .sub(b.get(k).castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE)).amaxNumber().doubleValue());
    }
    return max;
  }

  @Test
  void sparkGradientSyncEqualsTheLocalTrainer() throws Exception {
    for (String optimizer : List.of("adamw", "sgd")) {
      Run local = train(config("local-" + optimizer, "local", "train.optimizer=" + optimizer));
      Run spark = train(config("spark-" + optimizer, "spark", "train.optimizer=" + optimizer));
      assertSameTraining(local, spark, optimizer);
      assertNull(local.summary().distributed());
      assertNotNull(spark.summary().distributed());
      assertEquals(2, spark.summary().distributed().partitions());
    }
  }

  /**
   * Prompt tuning (text init through the model's tokenizer): the executors rebuild it from {@link LmSpec}'s prompt
   * section and only {@code prompt_embeddings} travels; same losses, tensor and eval as one JVM.
   */
  @Test
  void sparkPromptTuningEqualsTheLocalTrainer() throws Exception {
    String[] prompt = {"method=prompt_tuning", "prompt.num_virtual_tokens=4", "prompt.init=text",
        "prompt.init_text=the cat sat", "train.lr=0.1"};
    Run local = train(config("local-prompt", "local", prompt));
    Run spark = train(config("spark-prompt", "spark", prompt));
    assertEquals(List.of("prompt_embeddings"), List.copyOf(spark.adapter().keySet()));
    assertArrayEquals(new long[] {4, 16}, spark.adapter().get("prompt_embeddings").shape());
    assertSameTraining(local, spark, "prompt_tuning");
    assertEquals(4 * 16, spark.summary().trainableParams());
  }

  /**
   * train.gradient_checkpointing reaches the executors' models (local[2]: their pool lives in this JVM) and changes
   * only what is kept in memory: the adapter equals the one trained without it.
   */
  @Test
  void gradientCheckpointingIsOnInTheExecutorModelsAndGivesTheSameAdapter() throws Exception {
    JobConfig offCfg = config("gc-off", "spark");
    JobConfig onCfg = config("gc-on", "spark", "train.gradient_checkpointing=true");
    Run off = train(offCfg);
    Run on = train(onCfg);
    double diff = maxDiff(off.adapter(), on.adapter());
    assertTrue(diff <= 1e-6, "checkpointed adapter differs by " + diff);
    assertTrue(on.steps().get(7).loss() < on.steps().get(0).loss() - 0.05, "the adapter moved");
    for (JobConfig cfg : List.of(offCfg, onCfg)) {
      CausalLmBase base = CausalLmBase.load(cfg.model(), cfg.modelConfig(), cfg.train().seed());
      LmSpec spec = LmSpec.of(cfg.model(), cfg.modelConfig(), cfg.train().seed(), CausalLmJob.newModel(cfg, base));
      assertEquals(cfg == onCfg, spec.gradientCheckpointing());
      List<PeftCausalLm> executorModels = LmGradientTask.pooled(spec);
      assertTrue(!executorModels.isEmpty(), "the executors kept their models for " + spec);
      for (PeftCausalLm m : executorModels)
        assertEquals(cfg == onCfg, m.model().gradientCheckpointing(), "executor model of " + cfg.outputDir());
    }
  }

  /**
   * method qlora: the driver and the executors (local[2]: one JVM) build on one cached NF4 base that holds no float
   * copy of a layer linear; Spark's losses, adapter and eval equal one JVM's.
   */
  @Test
  void sparkQloraEqualsTheLocalTrainerOnOneSharedNf4Base() throws Exception {
    String[] qlora = {"method=qlora", "lora.target_modules=[all-linear]"};
    JobConfig localCfg = config("local-qlora", "local", qlora), sparkCfg = config("spark-qlora", "spark", qlora);
    Run local = train(localCfg);
    Run spark = train(sparkCfg);
    assertSameTraining(local, spark, "qlora");
    // eval of the saved adapter (on the NF4 base, as qlora) repeats the run's own eval
    JobConfig evalCfg = config("eval-qlora", "local", qlora);
    assertEquals(local.evalLoss(), CausalLmJob.eval(evalCfg, localCfg.outputDir()).loss(), 1e-9, "eval command");

    CausalLmBase base = CausalLmBase.load(sparkCfg.model(), null, sparkCfg.train().seed(), BaseStorage.NF4);
    PackedTensors packed = assertInstanceOf(PackedTensors.class, base.weights());
    assertEquals(2 * 7, packed.nf4().size(), "every layer linear of 2 layers");
    for (String name : packed.keySet()) assertTrue(!name.contains(".self_attn.") && !name.contains(".mlp."), name);
    assertNotSame(base, CausalLmBase.load(sparkCfg.model(), null, sparkCfg.train().seed()), "one base per storage form");
    List<PeftCausalLm> executorModels = LmGradientTask.pooled(LmSpec.of(sparkCfg.model(), null, sparkCfg.train().seed(),
        CausalLmJob.newModel(sparkCfg, base)));
    assertTrue(!executorModels.isEmpty(), "the executors kept their models");
    for (PeftCausalLm m : executorModels) {
      for (var l : m.model().linears()) {
        QuantizedLinear q = assertInstanceOf(QuantizedLinear.class, l.base(), l.name());
        assertSame(packed.nf4(l.name() + ".weight"), q.packedWeight(), l.name() + " shares the cached NF4 weight");
      }
    }
  }

  /** aggregation_depth 2 and 3 on 4 partitions: reruns repeat bit for bit, within 1e-6 of depth 1 and local. */
  @Test
  void treeSumsRepeatBitForBitAndStayWithinOneMillionthOfDepthOneAndLocal() throws Exception {
    Run local = train(config("tree-local", "local"));
    Map<String, Run> runs = new java.util.LinkedHashMap<>();
    for (String run : List.of("1", "2a", "2b", "3a", "3b")) {
      runs.put(run, train(config("tree-" + run, "spark", "spark.partitions=4",
          "distributed.aggregation_depth=" + run.charAt(0))));
    }
    assertEquals(0.0, maxDiff(runs.get("2a").adapter(), runs.get("2b").adapter()), "depth 2 reruns: same bits");
    assertEquals(0.0, maxDiff(runs.get("3a").adapter(), runs.get("3b").adapter()), "depth 3 reruns: same bits");
    for (String run : List.of("1", "2a", "3a")) {
      double vsLocal = maxDiff(runs.get(run).adapter(), local.adapter());
      double vsDepth1 = maxDiff(runs.get(run).adapter(), runs.get("1").adapter());
      assertTrue(vsLocal <= 1e-6 && vsDepth1 <= 1e-6, "depth " + run + ": max |diff| " + vsLocal + " from local, "
          + vsDepth1 + " from depth 1");
      assertEquals(4, runs.get(run).summary().distributed().partitions());
    }
    assertTrue(local.steps().get(7).loss() < local.steps().get(0).loss() - 0.05, "the adapter moved");
  }

  @Test
  void rowsOfAStepGoRoundRobinToThePartitions() {
    int[][] ids = {{1, 2, 3}, {4, 5, 0}, {6, 0, 0}};
    int[][] mask = {{1, 1, 1}, {1, 1, 0}, {1, 0, 0}};
    LmBatch b = new LmBatch(ids, mask, null, 6);
    var shards = LmShard.split(List.of(b), 2);
    LmBatch p0 = shards.get(0).steps().get(0), p1 = shards.get(1).steps().get(0);
    assertArrayEquals(new int[][] {{1, 2, 3}, {6, 0, 0}}, p0.ids());
    assertArrayEquals(new int[][] {{4, 5, 0}}, p1.ids());
    assertEquals(4, p0.tokens());
    assertEquals(2, p1.tokens());
    assertEquals(b.weight(), p0.weight() + p1.weight());
    assertNull(LmShard.split(List.of(b.slice(0, 1)), 2).get(1).steps().get(0), "a partition without rows");
  }

  @Test
  void averageSyncIsRefusedByName() {
    var a = assertThrows(ConfigException.class,
        () -> LmSparkFitter.checkSupported(config("avg", "spark", "distributed.sync=average")));
    assertTrue(a.getMessage().contains("distributed.sync"), a.getMessage());
  }

  /** A run killed after its step-3 checkpoint (in the second epoch), rerun, ends where an uninterrupted run does. */
  @Test
  void rerunResumesFromTheNewestCheckpointAndEndsEqual() throws Exception {
    String[] sets = {"checkpoint.every_steps=3"};
    Run straight = train(config("ckpt-straight", "spark", sets));
    JobConfig crashing = config("ckpt-resumed", "spark", sets);
    TrainListener crashAt8 = new TrainListener() {
      @Override public void onStep(StepMetrics m) { if (m.step() == 8) throw new IllegalStateException("crash"); }
    };
    assertThrows(IllegalStateException.class,
        () -> CausalLmJob.train(crashing, crashAt8, new LmSparkFitter(TestSpark.context())));
    Path out = Path.of(crashing.outputDir());
    assertTrue(Files.isRegularFile(out.resolve("checkpoints/step-6/state.bin")), "step-6 checkpoint written");
    assertTrue(!Files.exists(out.resolve("adapter_model.safetensors")), "no adapter from the crashed run");
    Run resumed = train(crashing);
    assertEquals(6, resumed.summary().distributed().resumedFromStep());
    assertEquals(8, resumed.summary().steps());
    assertEquals(0.0, maxDiff(straight.adapter(), resumed.adapter()), "resumed adapter equals the straight run's");
    assertEquals(straight.evalLoss(), resumed.evalLoss());
    List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
    assertEquals(8, lines.size(), "every step once in metrics.jsonl");
    assertTrue(Files.isRegularFile(out.resolve("checkpoints/step-6/state.bin")), "checkpoints kept with the output");
  }

  /** A NaN in the starting adapter (init_adapter: executors rebuild a loaded model) stops step 1, naming it. */
  @Test
  void aNanAdapterStopsTheRunAtStepOneNamingThePartition() throws Exception {
    JobConfig first = config("nan-source", "local", "train.max_steps=1");
    CausalLmJob.train(first, new TrainListener() {});
    Path file = Path.of(first.outputDir()).resolve("adapter_model.safetensors");
    Map<String, INDArray> tensors = new java.util.LinkedHashMap<>(SafeTensors.loadAll(file));
    String b = tensors.keySet().stream().filter(k -> k.contains("q_proj.lora_B")).findFirst().orElseThrow();
    tensors.get(b).putScalar(0, Float.NaN);
    SafeTensors.write(file, tensors, Map.of("format", "pt"));

    for (int depth = 1; depth <= 2; depth++) {   // a tree sum still names the partition
      JobConfig nan = config("nan-" + depth, "spark", "init_adapter=" + first.outputDir(), "checkpoint.every_steps=1",
          "spark.partitions=4", "distributed.aggregation_depth=" + depth);
      var e = assertThrows(dev.peftspark.core.train.Trainer.NonFiniteException.class,
          () -> CausalLmJob.train(nan, new TrainListener() {}, new LmSparkFitter(TestSpark.context())));
      assertTrue(e.getMessage().startsWith("step 1 (partition 0: loss is NaN)"), e.getMessage());
      Path out = Path.of(nan.outputDir());
      assertTrue(!Files.exists(out.resolve("adapter_model.safetensors")), "nothing saved");
      assertTrue(!Files.exists(out.resolve("checkpoints/step-1")), "no checkpoint of the bad step");
    }
  }
}
