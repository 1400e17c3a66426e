package dev.peftspark.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** {@code bench --arch ...} on tiny shapes, through Main as a user runs it: one JSON line with sane figures. */
class LmBenchCommandTest {
  private static JsonNode bench(String... args) throws Exception {
    var out = new ByteArrayOutputStream();
    var err = new ByteArrayOutputStream();
    int code = Main.run(new MainTest.FakeEngine(), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8), args);
    String text = out.toString(StandardCharsets.UTF_8).trim();
    assertEquals(0, code, err.toString(StandardCharsets.UTF_8));
    assertEquals(1, text.lines().count(), "one JSON line, got: " + text);
    return new ObjectMapper().readTree(text);
  }

  private static final String[] LLAMA = {"bench", "--arch", "llama", "--hidden", "32", "--layers", "2", "--heads", "4",
      "--kv-heads", "2", "--intermediate", "48", "--vocab", "50", "--seq", "8", "--batch", "2", "--steps", "2",
      "--warmup", "1", "--threads", "1"};

  private static String[] with(String[] base, String... more) {
    String[] all = java.util.Arrays.copyOf(base, base.length + more.length);
    System.arraycopy(more, 0, all, base.length, more.length);
    return all;
  }

  @Test
  void loraOnLlamaCountsAdapterParametersAndFlops() throws Exception {
    JsonNode r = bench(with(LLAMA, "--method", "lora", "--rank", "4", "--targets", "q_proj,v_proj"));
    // per layer: q_proj 32->32 and v_proj 32->16 (2 kv heads of 8), r·(in+out) each
    assertEquals(2 * (4 * (32 + 32) + 4 * (32 + 16)), r.get("trainable").asLong());
    long base = 50L * 32 * 2 + 2 * (32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 48 * 32 + 2 * 32) + 32;   // embed, head, layers, norm
    assertEquals(base + r.get("trainable").asLong(), r.get("total").asLong());
    // forward 2·n·W + head + attention; input gradients the same; LoRA's products 3·2·n·r·(in+out); no weight grads
    double n = 16, nHead = 14, layerW = 2 * (32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 48 * 32.0), head = 50 * 32;
    double attention = 2 * 4 * n * 8 * 32;
    double lora = 2 * (2 * n * 4 * (64 + 48));
    double lowestQkvInputGrads = 2 * n * (32 * 32 + 2 * 16 * 32);   // layer 0: nothing below it trains
    double expected = 2 * (2 * n * layerW + 2 * nHead * head) - lowestQkvInputGrads + 3 * attention + 3 * lora;
    assertEquals(expected, r.get("flops_per_step").asDouble(), 1e-6 * expected);
    assertTrue(r.get("tokens_per_s").asDouble() > 0 && r.get("step_ms").asDouble() > 0);
    assertEquals(16 / (r.get("step_ms").asDouble() / 1000), r.get("tokens_per_s").asDouble(), 1e-6 * r.get("tokens_per_s").asDouble());
    assertTrue(r.get("gflops").asDouble() > 0);
    // one time per timed step; the best is their minimum and the mean lies within their range
    JsonNode each = r.get("step_ms_each");
    assertEquals(2, each.size());
    double lo = Math.min(each.get(0).asDouble(), each.get(1).asDouble()), hi = Math.max(each.get(0).asDouble(), each.get(1).asDouble());
    assertEquals(lo, r.get("step_ms_best").asDouble(), 0.05 + 1e-9);   // the list is rounded to 0.1 ms
    assertTrue(r.get("step_ms").asDouble() >= lo - 0.05 && r.get("step_ms").asDouble() <= hi + 0.05 + 1.0,
        "mean " + r.get("step_ms") + " outside the steps' range " + each);   // + 1 ms: the loop's own overhead
    assertTrue(r.get("gc_ms").asLong() >= 0 && r.get("jit_ms").asLong() >= 0);
    // time inside the products, summed over threads: positive, and within the threads' share of the timed steps
    double gemmMs = r.get("gemm_thread_ms_per_step").asDouble();
    assertTrue(gemmMs > 0 && gemmMs <= r.get("threads").asInt() * hi + 1.0, "gemm_thread_ms_per_step " + gemmMs + ", steps " + each);
    assertTrue(r.get("gemm_gflops_per_thread").asDouble() > 0);
    assertTrue(r.get("peak_rss_mb").asDouble() > 50, "VmHWM covers the JVM: " + r.get("peak_rss_mb"));
    assertTrue(Double.isFinite(r.get("loss").asDouble()) && Math.abs(r.get("loss").asDouble() - Math.log(50)) < 0.5);
  }

  @Test
  void twoThreadsSplitTheBatchByRowsWithTheLossesOfOne() throws Exception {
    String[] two = LLAMA.clone();
    two[two.length - 1] = "2";   // --threads 2 (batch 2: one row per thread)
    JsonNode qlora = bench(with(two, "--method", "qlora", "--rank", "4"));
    assertEquals("ops", qlora.get("step_split").asText(), "quantized layers have no replicas");
    for (String method : new String[] {"lora", "full", "prefix_tuning"}) {
      JsonNode split = bench(with(two, "--method", method));
      JsonNode one = bench(with(LLAMA, "--method", method));   // last: leaves OpenBLAS on one thread for the other tests
      assertEquals("rows", split.get("step_split").asText(), method);
      assertEquals("ops", one.get("step_split").asText(), method);
      double loss = one.get("loss").asDouble();
      assertEquals(loss, split.get("loss").asDouble(), 1e-5 * loss, method + ": three steps, the same updates up to float order");
    }
  }

  @Test
  void gemmPrecisionIsRecordedAndBf16KeepsTheLoss() throws Exception {
    try {
      JsonNode fp32 = bench(LLAMA);
      assertEquals("fp32", fp32.get("gemm_precision").asText());
      // hidden 256, seq 32 × 2: the projections (64 × 256 × 256 multiply-adds) pass the bf16 threshold
      String[] wide = {"bench", "--arch", "llama", "--hidden", "256", "--layers", "1", "--heads", "4", "--intermediate", "256",
          "--vocab", "64", "--seq", "32", "--batch", "2", "--steps", "1", "--warmup", "0", "--threads", "1"};
      JsonNode a = bench(with(wide, "--gemm-precision", "fp32")), b = bench(with(wide, "--gemm-precision", "bf16"));
      assertEquals("bf16", b.get("gemm_precision").asText());
      double la = a.get("loss").asDouble(), lb = b.get("loss").asDouble();
      assertTrue(la != lb && Math.abs(la - lb) <= 3e-3 * la, "bf16 rounds the operands (~1e-3 of the loss): " + la + " vs " + lb);
    } finally {
      dev.peftspark.core.nn.Gemm.setPrecision("fp32");
    }
  }

  @Test
  void sgemmLibraryIsRecordedAndOpenBlasGivesTheSameLoss() throws Exception {
    try {
      JsonNode onednn = bench(LLAMA), openblas = bench(with(LLAMA, "--sgemm", "openblas"));
      assertEquals(System.getProperty("peft.gemm.sgemm", "onednn"), onednn.get("sgemm").asText());
      assertEquals("vector", onednn.get("exp").asText(), "the Vector API exp, as conf/jvm.options sets up");
      assertEquals("openblas", openblas.get("sgemm").asText());
      double loss = onednn.get("loss").asDouble();
      assertEquals(loss, openblas.get("loss").asDouble(), 1e-5 * loss, "two FP32 libraries: rounding apart");
    } finally {
      dev.peftspark.core.nn.Gemm.setSgemm(System.getProperty("peft.gemm.sgemm", "onednn"));
    }
  }

  @Test
  void sgemmPeakRunsOnEachLibrary() throws Exception {
    try {
      for (String library : new String[] {"nd4j", "onednn", "openblas"}) {
        JsonNode r = bench("bench", "sgemm", "--size", "96", "--reps", "2", "--library", library);
        assertEquals(library, r.get("library").asText());
        assertTrue(r.get("gflops").asDouble() > 0 && r.get("gflops_best").asDouble() >= r.get("gflops").asDouble() * 0.999, r.toString());
      }
    } finally {
      dev.peftspark.core.nn.Gemm.setSgemm(System.getProperty("peft.gemm.sgemm", "onednn"));
    }
  }

  @Test
  void fullTrainsEverythingAndOtherMethodsRun() throws Exception {
    JsonNode full = bench(with(LLAMA, "--method", "full"));
    assertEquals(full.get("total").asLong(), full.get("trainable").asLong());
    JsonNode qlora = bench(with(LLAMA, "--method", "qlora", "--rank", "4"));
    assertEquals(2 * (4 * (32 + 32) + 4 * (32 + 16)), qlora.get("trainable").asLong());
    assertEquals(full.get("total").asLong() + qlora.get("trainable").asLong(), qlora.get("total").asLong());
    JsonNode ia3 = bench(with(LLAMA, "--method", "ia3"));
    assertEquals(2 * (16 + 16 + 48), ia3.get("trainable").asLong());   // k, v outputs; down_proj input
    JsonNode gpt2 = bench("bench", "--arch", "gpt2", "--hidden", "16", "--layers", "1", "--heads", "2", "--vocab", "40",
        "--seq", "6", "--batch", "1", "--steps", "1", "--warmup", "0", "--method", "lora", "--rank", "2");
    assertEquals(2 * (16 + 48), gpt2.get("trainable").asLong());       // c_attn 16 -> 48
  }

  @Test
  void qloraKeepsSixteenBitTablesAndCheckpointingChangesNoLoss() throws Exception {
    JsonNode plain = bench(with(LLAMA, "--method", "qlora", "--rank", "4", "--workspace", "false"));
    assertEquals("BFLOAT16", plain.get("tables").asText());
    JsonNode ckpt = bench(with(LLAMA, "--method", "qlora", "--rank", "4", "--workspace", "false", "--gradient-checkpointing", "true",
        "--loss-chunk-rows", "3"));
    assertTrue(ckpt.get("gradient_checkpointing").asBoolean());
    assertEquals(3, ckpt.get("loss_chunk_rows").asInt());
    assertEquals(plain.get("loss").asDouble(), ckpt.get("loss").asDouble(), 1e-6, "two steps, the same updates");
    JsonNode f32 = bench(with(LLAMA, "--method", "qlora", "--rank", "4", "--tables", "f32"));
    assertEquals("FLOAT", f32.get("tables").asText());
    assertEquals(plain.get("total").asLong(), f32.get("total").asLong());
  }

  /**
   * Prompt tuning: 3 virtual rows of width 32 before each example; they pass every layer (11 rows per example, 11 keys
   * per query) and the gradient reaches layer 0's input (its q/k/v input gradients count).
   */
  @Test
  void promptTuningTrainsTheVirtualRowsAndCountsTheLongerRows() throws Exception {
    JsonNode r = bench(with(LLAMA, "--method", "prompt_tuning", "--virtual-tokens", "3"));
    assertEquals("prompt_tuning", r.get("method").asText());
    assertEquals(3, r.get("virtual_tokens").asInt());
    assertEquals(3 * 32, r.get("trainable").asLong());
    long base = 50L * 32 * 2 + 2 * (32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 48 * 32 + 2 * 32) + 32;
    assertEquals(base + 3 * 32, r.get("total").asLong());
    double n = 2 * 11, nHead = 14, layerW = 2 * (32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 48 * 32.0), head = 50 * 32;
    double attention = 2 * 4 * n * 11 * 32;   // two layers, q heads·hd = 32
    double expected = 2 * (2 * n * layerW + 2 * nHead * head) + 3 * attention;
    assertEquals(expected, r.get("flops_per_step").asDouble(), 1e-6 * expected);
    assertEquals(16 / (r.get("step_ms").asDouble() / 1000), r.get("tokens_per_s").asDouble(), 1e-6 * r.get("tokens_per_s").asDouble(),
        "tokens/s counts the real tokens");
    assertTrue(Double.isFinite(r.get("loss").asDouble()) && Math.abs(r.get("loss").asDouble() - Math.log(50)) < 0.5);
  }

  /**
   * Prefix tuning, 20 virtual tokens by default: every layer's keys and values (2 layers · 2 · kv heads 2 · hd 8 on
   * LLaMA; 1 · 2 · 16 on GPT-2); 8 rows per example meet 28 keys; nothing below layer 0's q/k/v needs a gradient.
   */
  @Test
  void prefixTuningDefaultsToTwentyVirtualTokensOnBothArchitectures() throws Exception {
    JsonNode r = bench(with(LLAMA, "--method", "prefix_tuning"));
    assertEquals(20, r.get("virtual_tokens").asInt());
    assertEquals(20 * 2 * 2 * 16, r.get("trainable").asLong());
    double n = 16, nHead = 14, layerW = 2 * (32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 48 * 32.0), head = 50 * 32;
    double attention = 2 * 4 * n * 28 * 32;
    double lowestQkvInputGrads = 2 * n * (32 * 32 + 2 * 16 * 32);
    double expected = 2 * (2 * n * layerW + 2 * nHead * head) - lowestQkvInputGrads + 3 * attention;
    assertEquals(expected, r.get("flops_per_step").asDouble(), 1e-6 * expected);
    assertTrue(Double.isFinite(r.get("loss").asDouble()) && Math.abs(r.get("loss").asDouble() - Math.log(50)) < 0.5);
    JsonNode gpt2 = bench("bench", "--arch", "gpt2", "--hidden", "16", "--layers", "1", "--heads", "2", "--vocab", "40",
        "--seq", "6", "--batch", "1", "--steps", "1", "--warmup", "0", "--method", "prefix_tuning", "--virtual-tokens", "5");
    assertEquals(5 * 2 * 16, gpt2.get("trainable").asLong());
    assertEquals("gpt2", gpt2.get("arch").asText());
    JsonNode gpt2Prompt = bench("bench", "--arch", "gpt2", "--hidden", "16", "--layers", "1", "--heads", "2", "--vocab", "40",
        "--seq", "1020", "--batch", "1", "--steps", "1", "--warmup", "0", "--method", "prompt_tuning", "--virtual-tokens", "8");
    assertEquals(8 * 16, gpt2Prompt.get("trainable").asLong(), "1020 tokens + 8 virtual rows fit: n_positions grows with them");
  }

  /** Runs a bench that must fail with exit code 1 and returns its stderr. */
  private static String failure(String... args) {
    var err = new ByteArrayOutputStream();
    int code = Main.run(new MainTest.FakeEngine(), new PrintStream(new ByteArrayOutputStream()),
        new PrintStream(err, true, StandardCharsets.UTF_8), args);
    assertEquals(1, code);
    return err.toString(StandardCharsets.UTF_8);
  }

  @Test
  void virtualTokensBelowOneAreOneClearError() {
    String err = failure(with(LLAMA, "--method", "prefix_tuning", "--virtual-tokens", "0"));
    assertTrue(err.contains("--virtual-tokens must be >= 1 for prefix_tuning, got 0"), err);
  }

  @Test
  void sixteenBitTablesNeedAFrozenLlama() {
    String err = failure(with(LLAMA, "--method", "full", "--tables", "bf16"));
    assertTrue(err.contains("--tables bf16 needs a frozen random LLaMA"), err);
  }

  @Test
  void badArchitectureIsOneClearError() {
    String err = failure("bench", "--arch", "mamba");
    assertTrue(err.contains("--arch must be llama or gpt2"), err);
  }
}
