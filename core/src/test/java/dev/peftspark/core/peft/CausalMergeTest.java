package dev.peftspark.core.peft;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.io.HfCheckpoint;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.Gpt2Config;
import dev.peftspark.core.model.Gpt2Model;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.optim.Optimizer;
import dev.peftspark.core.peft.lora.LoraConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The must-show: a Hugging Face directory written here with random weights (LLaMA with the head tied and
 * untied, GPT-2 with Conv1D weights) loads, trains a LoRA step, saves the adapter in PEFT's layout, merges, and
 * the merged directory reloads with the logits of base + adapter.
 */
class CausalMergeTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int[][] IDS = {{1, 7, 9, 3, 2, 5, 4, 4}, {0, 0, 4, 11, 28, 6, 6, 1}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1, 1, 1}};
  private static final String TOKENIZER = "{\"model\": {\"type\": \"stand-in\"}}";
  private static final String GENERATION = "{\"eos_token_id\": 2}";

  static Path writeBase(Path dir, com.fasterxml.jackson.databind.node.ObjectNode config, Map<String, INDArray> w) throws IOException {
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("config.json"), JSON.writeValueAsString(config));
    SafeTensors.write(dir.resolve(HfCheckpoint.SINGLE), w, Map.of("format", "pt"));
    Files.writeString(dir.resolve("tokenizer.json"), TOKENIZER);
    Files.writeString(dir.resolve("generation_config.json"), GENERATION);
    return dir;
  }

  static Path llamaDir(Path dir, boolean tied) throws IOException {
    LlamaConfig c = new LlamaConfig("llama", 29, 16, 24, 2, 4, 2, 4, 64, 1e-5, 10000.0, null, tied, false, false, false, 0, 0.1);
    return writeBase(dir, c.toJson("float32"), LlamaModel.randomWeights(c, DataType.FLOAT, 7));
  }

  static Path gpt2Dir(Path dir, boolean tied) throws IOException {
    Gpt2Config c = new Gpt2Config(29, 32, 16, 2, 4, 24, 1e-5, tied, 0.1);
    return writeBase(dir, c.toJson("float32"), Gpt2Model.randomWeights(c, DataType.FLOAT, 7));
  }

  /** One AdamW step on a fresh LoRA (B = 0 before it, so this step is what makes the adapter matter). */
  static void trainOneStep(CausalLm model, List<Param> adapters) {
    ParamSet ps = new ParamSet(adapters, DataType.FLOAT);
    Optimizer opt = Optimizer.create("adamw", ps.size(), Nd4j.ones(DataType.FLOAT, ps.size()), 0.0, 0, 0.9, 0.999, 1e-8);
    ps.zeroGrad();
    assertTrue(Double.isFinite(model.trainStep(IDS, MASK, null, 1.0)));
    opt.step(ps.values(), ps.grads(), 0.05);
  }

  static double maxDiff(INDArray a, INDArray b) { return a.sub(b).amaxNumber().doubleValue(); }

  private void roundTrip(Path base, List<String> targets, boolean dora, Path tmp) throws IOException {
    CausalLm model = CausalLm.load(base, DataType.FLOAT, false);
    INDArray baseLogits = model.logits(IDS, MASK);
    LoraConfig cfg = new LoraConfig(4, 8, 0, targets, false, "none", false, dora);
    List<Param> adapters = CausalLora.inject(model, cfg, DataType.FLOAT, 3);
    trainOneStep(model, adapters);
    INDArray adapted = model.logits(IDS, MASK);
    assertTrue(maxDiff(adapted, baseLogits) > 1e-2, "the trained adapter changes the logits: " + maxDiff(adapted, baseLogits));

    Path adapterDir = tmp.resolve("adapter");
    CausalLora.save(adapterDir, model, cfg, base.toString());
    CausalLm reloaded = CausalLm.load(base, DataType.FLOAT, false);
    CausalLora.load(adapterDir, reloaded, DataType.FLOAT);
    assertEquals(0.0, maxDiff(adapted, reloaded.logits(IDS, MASK)), 1e-6, "saved adapter reloads");

    Path out = tmp.resolve("merged");
    CausalMerge.write(model, base, out);
    assertEquals(Set.of("config.json", HfCheckpoint.SINGLE, "tokenizer.json", "generation_config.json"), names(out));
    assertEquals(TOKENIZER, Files.readString(out.resolve("tokenizer.json")));
    Map<String, INDArray> baseTensors = SafeTensors.loadAll(base.resolve(HfCheckpoint.SINGLE));
    Map<String, INDArray> mergedTensors = SafeTensors.loadAll(out.resolve(HfCheckpoint.SINGLE));
    boolean untied = targets.contains("lm_head") && !baseTensors.containsKey("lm_head.weight");
    Set<String> expectedNames = new java.util.TreeSet<>(baseTensors.keySet());
    if (untied) expectedNames.add("lm_head.weight");
    assertEquals(expectedNames, new java.util.TreeSet<>(mergedTensors.keySet()), "the merged checkpoint has the base's tensor names");
    assertEquals(!untied && JSON.readTree(base.resolve("config.json").toFile()).get("tie_word_embeddings").asBoolean(),
        JSON.readTree(out.resolve("config.json").toFile()).get("tie_word_embeddings").asBoolean());
    for (var e : baseTensors.entrySet())
      assertArrayEquals(e.getValue().shape(), mergedTensors.get(e.getKey()).shape(), e.getKey());
    CausalLm merged = CausalLm.load(out, DataType.FLOAT, false);
    double d = maxDiff(adapted, merged.logits(IDS, MASK));
    assertTrue(d <= 1e-4, "merged logits differ from base + adapter by " + d);
  }

  private static Set<String> names(Path dir) throws IOException {
    try (var s = Files.list(dir)) {
      return Set.copyOf(s.map(p -> p.getFileName().toString()).toList());
    }
  }

  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void llamaLoadsTrainsMergesAndReloads(boolean tied, @TempDir Path tmp) throws IOException {
    List<String> targets = new ArrayList<>(List.of("q_proj", "v_proj"));
    if (!tied) targets.add("lm_head");
    roundTrip(llamaDir(tmp.resolve("base"), tied), targets, false, tmp);
  }

  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void gpt2Conv1DWeightsMergeTransposedBack(boolean tied, @TempDir Path tmp) throws IOException {
    List<String> targets = new ArrayList<>(List.of("c_attn", "c_proj", "c_fc"));   // c_proj: attention's and the MLP's
    if (!tied) targets.add("lm_head");
    roundTrip(gpt2Dir(tmp.resolve("base"), tied), targets, false, tmp);
  }

  /** LoRA on a tied head (as train allows): the merged model gets its own lm_head.weight and is untied. */
  @Test
  void anAdaptedTiedHeadIsUntiedByTheMerge(@TempDir Path tmp) throws IOException {
    roundTrip(llamaDir(tmp.resolve("base"), true), List.of("v_proj", "lm_head"), false, tmp);
  }

  /** A plain PEFT IA3 directory (no peft_spark.json) on GPT-2: loads, and merges into Conv1D layout. */
  @Test
  void plainPeftIa3LoadsAndMerges(@TempDir Path tmp) throws IOException {
    Path base = gpt2Dir(tmp.resolve("base"), true);
    dev.peftspark.core.model.CausalLmConfig shape = dev.peftspark.core.model.CausalLmConfig.read(base.resolve("config.json"));
    PeftCausalLm ia3 = PeftCausalLm.create(Method.IA3, null, PeftCausalLm.defaultIa3(shape), t -> {
      try {
        return CausalLm.load(base, DataType.FLOAT, t);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }, DataType.FLOAT, 0);
    for (String n : ia3.params().names()) ia3.params().get(n).value().muli(1.7).subi(0.2);
    LmAdapterFiles.save(tmp.resolve("ia3"), ia3, shape, base.toString(), base.toString());
    Files.delete(tmp.resolve("ia3").resolve(AdapterFiles.EXTRA));
    INDArray want = ia3.model().logits(IDS, MASK);
    CausalLm loaded = CausalLm.load(base, DataType.FLOAT, false);
    CausalLora.load(tmp.resolve("ia3"), loaded, DataType.FLOAT);
    assertEquals(0.0, maxDiff(want, loaded.logits(IDS, MASK)), 1e-6);
    assertTrue(maxDiff(want, CausalLm.load(base, DataType.FLOAT, false).logits(IDS, MASK)) > 1e-2);
    CausalMerge.write(loaded, base, tmp.resolve("merged"));
    double d = maxDiff(want, CausalLm.load(tmp.resolve("merged"), DataType.FLOAT, false).logits(IDS, MASK));
    assertTrue(d <= 1e-4, "merged IA3 logits differ by " + d);
  }

  @Test
  void doraMergesToo(@TempDir Path tmp) throws IOException {
    roundTrip(llamaDir(tmp.resolve("base"), false), List.of("q_proj", "o_proj", "down_proj"), true, tmp);
  }

  @Test
  void adapterKeysArePeftsAndGpt2SaysFanInFanOut(@TempDir Path tmp) throws IOException {
    CausalLm gpt = CausalLm.load(gpt2Dir(tmp.resolve("base"), false), DataType.FLOAT, false);
    LoraConfig cfg = new LoraConfig(2, 4, 0, List.of("c_attn", "lm_head"), false, "none", false);
    CausalLora.inject(gpt, cfg, DataType.FLOAT, 1);
    CausalLora.save(tmp.resolve("a"), gpt, cfg, "tiny-gpt2");
    Map<String, INDArray> saved = SafeTensors.loadAll(tmp.resolve("a").resolve(AdapterFiles.WEIGHTS));
    assertArrayEquals(new long[] {2, 16}, saved.get("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape());
    assertArrayEquals(new long[] {48, 2}, saved.get("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").shape());
    assertArrayEquals(new long[] {29, 2}, saved.get("base_model.model.lm_head.lora_B.weight").shape());
    assertEquals(6, saved.size());
    var config = JSON.readTree(tmp.resolve("a").resolve(AdapterFiles.CONFIG).toFile());
    assertTrue(config.get("fan_in_fan_out").asBoolean());
    assertEquals("CAUSAL_LM", config.get("task_type").asText());
  }

  @Test
  void mistakesSayWhatIsWrong(@TempDir Path tmp) throws IOException {
    Path base = llamaDir(tmp.resolve("base"), false);
    CausalLm untied = CausalLm.load(base, DataType.FLOAT, false);
    LoraConfig cfg = new LoraConfig(2, 4, 0, List.of("q_proj", "lm_head"), false, "none", false);
    CausalLora.inject(untied, cfg, DataType.FLOAT, 1);
    CausalLora.save(tmp.resolve("a"), untied, cfg, "x");
    LoraConfig rank3 = new LoraConfig(3, 4, 0, List.of("q_proj", "lm_head"), false, "none", false);
    CausalLm other3 = CausalLm.load(base, DataType.FLOAT, false);
    CausalLora.inject(other3, rank3, DataType.FLOAT, 1);
    CausalLora.save(tmp.resolve("r3"), other3, rank3, "x");
    Files.copy(tmp.resolve("a").resolve(AdapterFiles.CONFIG), tmp.resolve("r3").resolve(AdapterFiles.CONFIG),
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    IOException io = assertThrows(IOException.class, () -> CausalLora.load(tmp.resolve("r3"), CausalLm.load(base, DataType.FLOAT, false), DataType.FLOAT));
    assertTrue(io.getMessage().contains("has shape [3, 16] but adapter_config.json says r=2"), io.getMessage());

    CausalLm other = CausalLm.load(gpt2Dir(tmp.resolve("gpt"), false), DataType.FLOAT, false);
    io = assertThrows(IOException.class, () -> CausalLora.load(tmp.resolve("a"), other, DataType.FLOAT));
    assertTrue(io.getMessage().contains("'q_proj' matches no module"), io.getMessage());

    Files.createDirectories(tmp.resolve("taken"));
    Files.writeString(tmp.resolve("taken").resolve("x"), "");
    io = assertThrows(IOException.class, () -> CausalMerge.write(untied, base, tmp.resolve("taken")));
    assertTrue(io.getMessage().contains("already exists"), io.getMessage());
  }
}
