package dev.peftspark.spark.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.generate.Generator;
import dev.peftspark.core.io.HfCheckpoint;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.Gpt2Config;
import dev.peftspark.core.model.Gpt2Model;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.model.CausalLmConfig;
import dev.peftspark.core.peft.CausalLora;
import dev.peftspark.core.peft.LmAdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.prompt.PromptConfig;
import dev.peftspark.datasets.lm.HfLmTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code generate} and causal-LM {@code merge} through the real CLI on tiny random Hugging Face directories. */
class GenerateMergeCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int VOCAB = 29;
  private static final int[][] IDS = {{1, 7, 9, 3, 2, 5, 4, 4}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1, 1, 1, 1}};

  /** Word-level vocabulary w3 .. w28 after <unk>, <s>, </s>; the post-processor adds <s> (LLaMA's BOS). */
  static String tokenizerJson(boolean bos) {
    String vocab = IntStream.range(3, VOCAB).mapToObj(i -> "\"w" + i + "\": " + i).collect(Collectors.joining(", "));
    String post = bos ? """
        {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}""" : "null";
    return """
        {"version": "1.0", "truncation": null, "padding": null,
         "added_tokens": [
           {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
           {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
           {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
         "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": %s,
         "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": false},
         "model": {"type": "WordLevel", "unk_token": "<unk>", "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, %s}}}
        """.formatted(post, vocab);
  }

  static Path modelDir(Path dir, boolean gpt2) throws IOException {
    Files.createDirectories(dir);
    Map<String, INDArray> w;
    if (gpt2) {
      Gpt2Config c = new Gpt2Config(VOCAB, 64, 16, 2, 4, 24, 1e-5, true, 0.3);
      Files.writeString(dir.resolve("config.json"), c.toJson("float32").toString());
      w = Gpt2Model.randomWeights(c, DataType.FLOAT, 11);
    } else {
      LlamaConfig c = new LlamaConfig("llama", VOCAB, 16, 24, 2, 4, 2, 4, 64, 1e-5, 10000.0, null, false, false, false, false, 0, 0.3);
      Files.writeString(dir.resolve("config.json"), c.toJson("float32").toString());
      w = LlamaModel.randomWeights(c, DataType.FLOAT, 11);
    }
    SafeTensors.write(dir.resolve(HfCheckpoint.SINGLE), w, Map.of("format", "pt"));
    Files.writeString(dir.resolve("tokenizer.json"), tokenizerJson(!gpt2));
    Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"</s>\"}");
    return dir;
  }

  /** A LoRA adapter with random (non-zero) A and B, saved in PEFT's layout. */
  static Path adapter(Path base, Path dir, List<String> targets) throws IOException {
    CausalLm m = CausalLm.load(base, DataType.FLOAT, false);
    LoraConfig cfg = new LoraConfig(2, 4, 0, targets, false, "none", false);
    SplittableRandom rng = new SplittableRandom(5);
    for (Param p : CausalLora.inject(m, cfg, DataType.FLOAT, 1)) {
      double[] v = new double[(int) p.length()];
      for (int i = 0; i < v.length; i++) v[i] = (rng.nextDouble() - 0.5) * 1.5;
      p.value().assign(Nd4j.createFromArray(v).reshape(p.shape).castTo(DataType.FLOAT));
    }
    CausalLora.save(dir, m, cfg, base.toString());
    return dir;
  }

  /** What the library produces for the same request: the greedy continuation, decoded. */
  static String expected(Path base, Path adapter, String prompt, int maxNew) throws IOException {
    CausalLm m = CausalLm.load(base, DataType.FLOAT, false);
    if (adapter != null) CausalLora.load(adapter, m, DataType.FLOAT);
    try (HfLmTokenizer tok = HfLmTokenizer.load(base)) {
      int[] text = tok.encode(prompt), ids = new int[tok.prefixIds().length + text.length];
      System.arraycopy(tok.prefixIds(), 0, ids, 0, tok.prefixIds().length);
      System.arraycopy(text, 0, ids, tok.prefixIds().length, text.length);
      return tok.decode(Generator.generate(m, ids, Generator.Settings.greedy(maxNew, tok.eosId())).tokens());
    }
  }

  static CombineMergeCommandTest.Result cli(String... args) { return CombineMergeCommandTest.cli(args); }

  @Test
  void generatesGreedilyWithAndWithoutAnAdapter(@TempDir Path tmp) throws IOException {
    for (boolean gpt2 : new boolean[] {false, true}) {
      Path base = modelDir(tmp.resolve(gpt2 ? "gpt2" : "llama"), gpt2);
      Path a = adapter(base, tmp.resolve(gpt2 ? "a-gpt2" : "a-llama"), gpt2 ? List.of("c_attn", "c_fc") : List.of("q_proj", "v_proj", "lm_head"));
      String prompt = "w5 w9 w3 w14";
      var plain = cli("generate", "--model", base.toString(), "--prompt", prompt, "--max-new-tokens", "12");
      assertEquals(0, plain.code(), plain.err());
      String want = expected(base, null, prompt, 12);
      assertFalse(want.isBlank());
      assertEquals(want + System.lineSeparator(), plain.out());
      assertTrue(plain.err().strip().matches("\\d+ tokens \\(prompt " + (gpt2 ? 4 : 5) + ", stop: (eos|max_new_tokens)\\) in [0-9.]+ s: [0-9.]+ tokens/s"), plain.err());
      var adapted = cli("generate", "--model", base.toString(), "--adapter", a.toString(), "--prompt", prompt, "--max-new-tokens", "12");
      assertEquals(0, adapted.code(), adapted.err());
      assertEquals(expected(base, a, prompt, 12) + System.lineSeparator(), adapted.out());
      assertFalse(adapted.out().equals(plain.out()), "the adapter changes the continuation: " + plain.out());

      var s1 = cli("generate", "--model", base.toString(), "--prompt", prompt, "--temperature", "1.2", "--top-p", "0.9", "--seed", "3");
      var s2 = cli("generate", "--model", base.toString(), "--prompt", prompt, "--temperature", "1.2", "--top-p", "0.9", "--seed", "3");
      assertEquals(0, s1.code(), s1.err());
      assertEquals(s1.out(), s2.out(), "same seed, same text");
    }
  }

  @Test
  void mergeWritesADirectoryThatGeneratesLikeBasePlusAdapter(@TempDir Path tmp) throws IOException {
    for (boolean gpt2 : new boolean[] {false, true}) {
      Path base = modelDir(tmp.resolve(gpt2 ? "gpt2" : "llama"), gpt2);
      Path a = adapter(base, tmp.resolve(gpt2 ? "a-gpt2" : "a-llama"), gpt2 ? List.of("c_attn", "c_proj") : List.of("q_proj", "v_proj", "lm_head"));
      Path out = tmp.resolve(gpt2 ? "merged-gpt2" : "merged-llama");
      var r = cli("merge", "--model", base.toString(), "--adapter", a.toString(), "--out", out.toString());
      assertEquals(0, r.code(), r.err());
      assertTrue(r.err().contains("merged model written to " + out), r.err());
      CausalLm adapted = CausalLm.load(base, DataType.FLOAT, false);
      CausalLora.load(a, adapted, DataType.FLOAT);
      CausalLm merged = CausalLm.load(out, DataType.FLOAT, false);
      double d = adapted.logits(IDS, MASK).sub(merged.logits(IDS, MASK)).amaxNumber().doubleValue();
      assertTrue(d <= 1e-4, "merged logits differ from base + adapter by " + d);
      assertEquals(Files.readString(base.resolve("tokenizer.json")), Files.readString(out.resolve("tokenizer.json")));
      assertTrue(Files.isRegularFile(out.resolve("tokenizer_config.json")));
      String prompt = "w7 w7 w20";
      var fromMerged = cli("generate", "--model", out.toString(), "--prompt", prompt, "--max-new-tokens", "10");
      var fromAdapter = cli("generate", "--model", base.toString(), "--adapter", a.toString(), "--prompt", prompt, "--max-new-tokens", "10");
      assertEquals(fromAdapter.out(), fromMerged.out());

      var again = cli("merge", "--model", base.toString(), "--adapter", a.toString(), "--out", out.toString());
      assertEquals(1, again.code());
      assertTrue(again.err().startsWith("error: " + out + " already exists"), again.err());
    }
    try (var s = Files.list(tmp)) {
      assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".")), "no temporary left behind");
    }
  }

  @Test
  void peftSparkAdaptersIa3AndQloraMergeAndGenerate(@TempDir Path tmp) throws IOException {
    for (boolean gpt2 : new boolean[] {true, false}) {
      Path base = modelDir(tmp.resolve(gpt2 ? "gpt2" : "llama"), gpt2);
      CausalLmConfig shape = CausalLmConfig.read(base.resolve("config.json"));
      PeftCausalLm.Base build = t -> {
        try {
          return CausalLm.load(base, DataType.FLOAT, t);
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      };
      PeftCausalLm trained = gpt2
          ? PeftCausalLm.create(Method.IA3, null, PeftCausalLm.defaultIa3(shape), build, DataType.FLOAT, 0)
          : PeftCausalLm.create(Method.QLORA, new LoraConfig(2, 4, 0, List.of("q_proj", "v_proj"), false, "none", false), null, build, DataType.FLOAT, 0);
      SplittableRandom rng = new SplittableRandom(9);
      for (String name : trained.params().names()) {
        INDArray v = trained.params().get(name).value();
        double[] noise = new double[(int) v.length()];
        for (int i = 0; i < noise.length; i++) noise[i] = (rng.nextDouble() - 0.5) * 1.5;
        v.addi(Nd4j.createFromArray(noise).reshape(v.shape()).castTo(DataType.FLOAT));
      }
      Path a = tmp.resolve(gpt2 ? "ia3" : "qlora");
      LmAdapterFiles.save(a, trained, shape, base.toString(), base.toString());
      Path out = tmp.resolve(gpt2 ? "merged-ia3" : "merged-qlora");
      var r = cli("merge", "--model", base.toString(), "--adapter", a.toString(), "--out", out.toString());
      assertEquals(0, r.code(), r.err());
      INDArray want = trained.model().logits(IDS, MASK);
      assertTrue(want.sub(CausalLm.load(base, DataType.FLOAT, false).logits(IDS, MASK)).amaxNumber().doubleValue() > 1e-2, "the adapter matters");
      double d = want.sub(CausalLm.load(out, DataType.FLOAT, false).logits(IDS, MASK)).amaxNumber().doubleValue();
      assertTrue(d <= 1e-4, (gpt2 ? "ia3" : "qlora") + ": merged logits differ from base + adapter by " + d);
      var g = cli("generate", "--model", base.toString(), "--adapter", a.toString(), "--prompt", "w4 w8", "--max-new-tokens", "6");
      assertEquals(0, g.code(), g.err());
      assertEquals(cli("generate", "--model", out.toString(), "--prompt", "w4 w8", "--max-new-tokens", "6").out(), g.out());
    }
  }

  /** Prompt and prefix tuning adapters generate (the virtual tokens go into the KV cache); merge refuses them. */
  @Test
  void promptLearningAdaptersGenerateAndAreNotMerged(@TempDir Path tmp) throws IOException {
    for (boolean gpt2 : new boolean[] {true, false}) {
      Path base = modelDir(tmp.resolve(gpt2 ? "gpt2" : "llama"), gpt2);
      CausalLmConfig shape = CausalLmConfig.read(base.resolve("config.json"));
      Method method = gpt2 ? Method.PROMPT_TUNING : Method.PREFIX_TUNING;
      PeftCausalLm trained = PeftCausalLm.create(method, null, null, PromptConfig.random(3), t -> {
        try {
          return CausalLm.load(base, DataType.FLOAT, t);
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      }, DataType.FLOAT, 7);
      Path a = tmp.resolve(method.key());
      LmAdapterFiles.save(a, trained, shape, base.toString(), base.toString());
      String prompt = "w5 w9 w3 w14";
      var g = cli("generate", "--model", base.toString(), "--adapter", a.toString(), "--prompt", prompt, "--max-new-tokens", "8");
      assertEquals(0, g.code(), g.err());
      assertEquals(expected(base, a, prompt, 8) + System.lineSeparator(), g.out(), "the plain PEFT loader agrees");
      var plain = cli("generate", "--model", base.toString(), "--prompt", prompt, "--max-new-tokens", "8");
      assertFalse(plain.out().equals(g.out()), method + " changes the continuation: " + plain.out());
      var m = cli("merge", "--model", base.toString(), "--adapter", a.toString(), "--out", tmp.resolve("m-" + method.key()).toString());
      assertTrue(m.code() != 0, m.out());
      assertTrue(m.err().contains("cannot be merged") && m.err().contains("PEFT defines no merge"), m.err());
      assertFalse(Files.exists(tmp.resolve("m-" + method.key())), "nothing written");
    }
  }

  /** The whole path: train a LoRA with the CLI on a toy language, merge it, and generate from both. */
  @Test
  void trainMergeGenerate(@TempDir Path tmp) throws IOException {
    Path base = modelDir(tmp.resolve("llama"), false);
    Path text = tmp.resolve("train.txt");
    Files.write(text, IntStream.range(0, 80).mapToObj(i -> "w3 w4 w5 w6 w7 w8 w9 w10").toList());
    Path cfg = tmp.resolve("lora.yaml");
    Files.writeString(cfg, """
        task: causal_lm
        runner: local
        model: %s
        output_dir: %s
        data:
          train: [%s]
          test: [%s]
          max_length: 12
        train:
          epochs: 4
          batch_size: 8
          lr: 0.05
          log_every: 100
        lora:
          target_modules: [q_proj, v_proj, lm_head]
        """.formatted(base, tmp.resolve("run"), text, text));
    var t = cli("train", "--config", cfg.toString());
    assertEquals(0, t.code(), t.err());
    Path merged = tmp.resolve("merged");
    var m = cli("merge", "--model", base.toString(), "--adapter", tmp.resolve("run").toString(), "--out", merged.toString());
    assertEquals(0, m.code(), m.err());
    var before = cli("generate", "--model", base.toString(), "--prompt", "w3 w4 w5", "--max-new-tokens", "5");
    var adapted = cli("generate", "--model", base.toString(), "--adapter", tmp.resolve("run").toString(), "--prompt", "w3 w4 w5", "--max-new-tokens", "5");
    var fromMerged = cli("generate", "--model", merged.toString(), "--prompt", "w3 w4 w5", "--max-new-tokens", "5");
    assertEquals(0, fromMerged.code(), fromMerged.err());
    assertEquals("w6 w7 w8 w9 w10", adapted.out().strip(), "the tuned model continues the only sentence it saw; the base said " + before.out());
    assertEquals(adapted.out(), fromMerged.out());
  }

  @Test
  void badRequestsGiveOneClearLine(@TempDir Path tmp) throws IOException {
    Path base = modelDir(tmp.resolve("llama"), false);
    String longPrompt = IntStream.range(0, 70).mapToObj(i -> "w" + (3 + i % 20)).collect(Collectors.joining(" "));
    var r = cli("generate", "--model", base.toString(), "--prompt", longPrompt);
    assertEquals(1, r.code());
    assertEquals("error: the prompt has 71 tokens, more than the model's 64 positions", r.err().strip());
    r = cli("generate", "--model", base.toString(), "--prompt", "w3", "--top-p", "0");
    assertEquals(1, r.code());
    assertTrue(r.err().strip().startsWith("error: top_p must be in (0, 1]"), r.err());
    r = cli("generate", "--model", tmp.resolve("nothing").toString(), "--prompt", "w3");
    assertEquals(1, r.code());
    assertTrue(r.err().contains("config.json"), r.err());
  }
}
