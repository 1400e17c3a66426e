package dev.peftspark.spark.cli;

import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.Gpt2Config;
import dev.peftspark.core.model.Gpt2Model;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import dev.peftspark.core.nn.Floats;
import dev.peftspark.core.nn.Gemm;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.optim.Optimizer;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.ia3.Ia3;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.Lora;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.lora.LoraLinear;
import dev.peftspark.core.peft.prompt.PrefixTuning;
import dev.peftspark.core.peft.prompt.PromptConfig;
import dev.peftspark.core.peft.prompt.PromptTuning;
import dev.peftspark.core.quant.DequantBuffer;
import dev.peftspark.core.quant.QuantizedLinear;
import dev.peftspark.core.train.LmBatch;
import dev.peftspark.core.train.RowSplit;
import dev.peftspark.core.train.Trainer;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Option;

/**
 * {@code bench --arch llama|gpt2 ...}: training steps of a causal LM of any shape with random weights (or a loaded
 * model), synthetic tokens and AdamW; one JSON line. See {@link #usefulFlops} for what {@code gflops} counts.
 */
final class LmBench {
  @Option(names = "--arch", description = "llama | gpt2: a causal LM of the shape below (random weights).") String arch;
  @Option(names = "--model", description = "A Hugging Face model directory (LLaMA family or GPT-2) instead of random weights.") Path model;
  @Option(names = "--hidden", defaultValue = "512") int hidden;
  @Option(names = "--layers", defaultValue = "4") int layers;
  @Option(names = "--heads", defaultValue = "8") int heads;
  @Option(names = "--kv-heads", description = "Key/value heads (LLaMA; default: --heads).") Integer kvHeads;
  @Option(names = "--intermediate", description = "Feed-forward size (default: LLaMA 2.6875 × hidden rounded, GPT-2 4 × hidden).") Integer intermediate;
  @Option(names = "--vocab", defaultValue = "8000") int vocab;
  @Option(names = "--seq", defaultValue = "256") int seq;
  @Option(names = "--batch", defaultValue = "4") int batch;
  @Option(names = "--method", defaultValue = "lora", description = "lora | dora | qlora | ia3 | prompt_tuning | prefix_tuning | full") String method;
  @Option(names = "--virtual-tokens", defaultValue = "20", description = "Virtual tokens of prompt_tuning and prefix_tuning (random init).")
  int virtualTokens;
  @Option(names = "--rank", defaultValue = "8") int rank;
  @Option(names = "--targets", split = ",", description = "Adapted modules (default: q_proj,v_proj / c_attn for LoRA; PEFT's defaults for IA3).") List<String> targets;
  @Option(names = "--steps", defaultValue = "10") int steps;
  @Option(names = "--warmup", defaultValue = "2") int warmup;
  @Option(names = "--threads", description = "BLAS threads (OpenBLAS); default: as configured (OPENBLAS_NUM_THREADS).") Integer threads;
  @Option(names = "--seed", defaultValue = "1") long seed;
  @Option(names = "--gemm-precision", description = "fp32 | bf16: FLOAT products in FP32 (see --sgemm), or with both operands "
      + "rounded to bfloat16 and FP32 accumulation on oneDNN (default: -Dpeft.gemm.precision, else fp32).") String gemmPrecision;
  @Option(names = "--sgemm", description = "onednn | openblas: the library of FP32 products (default: -Dpeft.gemm.sgemm, "
      + "else onednn).") String sgemm;
  @Option(names = "--workspace", defaultValue = "true", arity = "1",
      description = "Allocate a step's activations from ND4J's reused workspace (fast; it holds every temporary of a "
          + "step at once). false: plain buffers released as they die, for the memory figures of large models "
          + "(pair with a low PEFT_SPARK_OFFHEAP so that JavaCPP collects early).") boolean workspace;

  @Option(names = "--tables", description = "Storage of the embedding table and lm_head (LLaMA): f32 | bf16 | f16 "
      + "(default: bf16 for qlora, frozen and widened a block at a time; f32 otherwise).") String tables;
  @Option(names = "--gradient-checkpointing", defaultValue = "false", arity = "1",
      description = "Keep only each layer's input and recompute its activations in backward (one layer's at a time).")
  boolean gradientCheckpointing;

  @Option(names = "--loss-chunk-rows", description = "Rows of logits the fused LM-head loss holds at once (default: 16 Mi logits / vocab).")
  Integer lossChunkRows;

  boolean requested() { return arch != null || model != null; }

  Map<String, Object> run() throws Exception {
    if (threads != null) {
      if (threads < 1) throw new IllegalArgumentException("--threads must be >= 1, got " + threads);
      Nd4jSetup.ensure();
      Nd4j.factory().blas().setMaxThreads(threads);   // OpenBLAS's pool; element-wise ops keep Nd4jSetup's
    }
    if (gemmPrecision != null) Gemm.setPrecision(gemmPrecision.toLowerCase());
    if (sgemm != null) Gemm.setSgemm(sgemm.toLowerCase());
    if (steps < 1 || warmup < 0 || batch < 1 || seq < 2) throw new IllegalArgumentException("--steps >= 1, --warmup >= 0, --batch >= 1 and --seq >= 2 are required");
    String m = method.toLowerCase();
    if (!List.of("lora", "dora", "qlora", "ia3", "prompt_tuning", "prefix_tuning", "full").contains(m))
      throw new IllegalArgumentException("--method must be lora, dora, qlora, ia3, prompt_tuning, prefix_tuning or full, got '" + method + "'");
    int promptRows = m.equals("prompt_tuning") ? virtualTokens : 0, prefixKeys = m.equals("prefix_tuning") ? virtualTokens : 0;
    if (m.endsWith("_tuning") && virtualTokens < 1)
      throw new IllegalArgumentException("--virtual-tokens must be >= 1 for " + m + ", got " + virtualTokens);
    long tBuild = System.nanoTime();
    // QLoRA quantizes each layer linear as it is built and drops its float weight at once
    UnaryOperator<LinearLayer> quantize = m.equals("qlora") ? QuantizedLinear.consuming(new DequantBuffer(DataType.FLOAT))
        : UnaryOperator.identity();
    DataType tableType = tableType(m);
    CausalLm lm = build(m.equals("full"), quantize, tableType, seq + promptRows + prefixKeys);
    lm.setGradientCheckpointing(gradientCheckpointing);
    if (lossChunkRows != null) lm.setLossChunkRows(lossChunkRows);
    double buildPeakMb = BenchCommand.peakRssMb();
    String kind = lm instanceof Gpt2Model ? "gpt2" : "llama";
    long baseTotal = lm.params().stream().mapToLong(Param::length).sum()
        + lm.linears().stream().filter(l -> l instanceof QuantizedLinear).mapToLong(l -> (long) l.inFeatures() * l.outFeatures()).sum();
    List<String> t = targets != null ? targets : kind.equals("gpt2") ? List.of("c_attn") : List.of("q_proj", "v_proj");
    UnaryOperator<CausalLm> adapt = model -> {
      switch (m) {
        case "lora", "dora", "qlora" -> Lora.inject(model, new LoraConfig(rank, 2.0 * rank, 0.0, t, false, "none", false, m.equals("dora")), DataType.FLOAT, seed);
        case "ia3" -> Ia3.inject(model, ia3Config(kind), DataType.FLOAT);
        case "prompt_tuning" -> PromptTuning.inject(model, PromptConfig.random(virtualTokens), DataType.FLOAT, seed);
        case "prefix_tuning" -> PrefixTuning.inject(model, PromptConfig.random(virtualTokens), DataType.FLOAT, seed);
        default -> { }
      }
      return model;
    };
    adapt.apply(lm);
    // replicas for steps split by rows (RowSplit): the same adapters on a twin reading lm's tensors
    PeftCausalLm peft = PeftCausalLm.of(Method.parse(m.equals("dora") ? "lora" : m), lm, DataType.FLOAT, k -> {
      CausalLm twin = lm.twin(m.equals("full"));
      return twin == null ? null : adapt.apply(twin);
    });
    ParamSet ps = peft.params();
    Optimizer opt = Optimizer.create("adamw", ps.size(), Nd4j.ones(DataType.FLOAT, Math.max(1, ps.size())), 0.0, 0, 0.9, 0.999, 1e-8);
    double buildS = (System.nanoTime() - tBuild) / 1e9;

    SplittableRandom rng = new SplittableRandom(seed);
    int[][] ids = new int[batch][seq], mask = new int[batch][seq];
    for (int b = 0; b < batch; b++) for (int i = 0; i < seq; i++) { ids[b][i] = rng.nextInt(lm.vocabSize()); mask[b][i] = 1; }
    double[] loss = new double[1];
    LmBatch rows = new LmBatch(ids, mask, null, batch * seq);
    long targets = rows.weight();
    int parts = RowSplit.parts(batch);
    // without the workspace a step stays on one model (the memory figures of that mode are for one instance)
    boolean split = workspace && parts > 1 && peft.replicas(parts).size() == parts;
    Runnable step = () -> {
      ps.zeroGrad();
      if (workspace) {
        loss[0] = Trainer.accumulate(peft, rows, targets, batch);   // the trainer's step: split by rows when it applies
      } else {
        loss[0] = lm.trainStep(ids, mask, null, 1.0);
      }
      opt.step(ps.values(), ps.grads(), 1e-4);
    };
    for (int i = 0; i < warmup; i++) step.run();
    var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    var jit = ManagementFactory.getCompilationMXBean();
    long gc0 = gcMillis(), jit0 = jit.getTotalCompilationTime(), cpu0 = os.getProcessCpuTime();
    long gemm0 = Gemm.productNanos(), macs0 = Gemm.productMacs(), t0 = System.nanoTime();
    double[] each = new double[steps];
    for (int i = 0; i < steps; i++) {
      long s0 = System.nanoTime();
      step.run();
      each[i] = (System.nanoTime() - s0) / 1e6;
    }
    long gcMs = gcMillis() - gc0, jitMs = jit.getTotalCompilationTime() - jit0;
    double gemmMs = (Gemm.productNanos() - gemm0) / 1e6 / steps, gemmMacs = (double) (Gemm.productMacs() - macs0) / steps;
    double stepS = (System.nanoTime() - t0) / 1e9 / steps;
    double cpuMs = (os.getProcessCpuTime() - cpu0) / 1e6 / steps;
    double flops = usefulFlops(lm, batch, seq, promptRows, prefixKeys);
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("bench", "lm");
    out.put("arch", kind);
    out.put("method", m);
    out.put("virtual_tokens", lm.virtualTokens());
    out.put("batch", batch);
    out.put("seq", seq);
    out.put("steps", steps);
    out.put("step_ms", stepS * 1000);
    out.put("step_ms_best", java.util.Arrays.stream(each).min().getAsDouble());
    out.put("cpu_ms_per_step", cpuMs);
    out.put("step_ms_each", java.util.Arrays.stream(each).map(x -> Math.round(x * 10) / 10.0).toArray());
    out.put("gc_ms", gcMs);   // collector pause time during the timed steps (all collectors)
    out.put("jit_ms", jitMs);   // JIT compiler threads' time during the timed steps: CPU the steps did not get
    out.put("gemm_thread_ms_per_step", gemmMs);   // summed over threads: compare with threads × step_ms
    out.put("gemm_gflops_per_thread", gemmMs > 0 ? 2 * gemmMacs / gemmMs / 1e6 : 0.0);
    out.put("tokens_per_s", batch * seq / stepS);
    out.put("gflops", flops / stepS / 1e9);
    out.put("flops_per_step", flops);
    out.put("trainable", ps.size());
    out.put("total", baseTotal + (m.equals("full") ? 0 : ps.size()));
    out.put("loss", loss[0]);
    out.put("peak_rss_mb", BenchCommand.peakRssMb());
    out.put("peak_rss_build_mb", buildPeakMb);
    out.put("tables", tableType.toString());
    out.put("gradient_checkpointing", gradientCheckpointing);
    out.put("loss_chunk_rows", lm.lossChunkRows());
    out.put("heap_max_mb", Runtime.getRuntime().maxMemory() / 1048576.0);
    out.put("build_s", buildS);
    out.put("workspace", workspace);
    out.put("threads", Nd4j.factory().blas().getMaxThreads());
    out.put("gemm_split", Gemm.splitMode());
    out.put("gemm_precision", Gemm.precision());
    out.put("sgemm", Gemm.sgemm());
    out.put("exp", Floats.expKind());
    out.put("step_split", split ? "rows" : "ops");   // rows: one micro-batch per thread on model replicas (RowSplit)
    return out;
  }

  private static long gcMillis() {
    long ms = 0;
    for (var gc : ManagementFactory.getGarbageCollectorMXBeans()) ms += Math.max(0, gc.getCollectionTime());
    return ms;
  }

  /** The storage of the embedding table and head: {@code --tables}, or bf16 for QLoRA on LLaMA and f32 otherwise. */
  private DataType tableType(String m) {
    if (tables == null) return m.equals("qlora") && !"gpt2".equals(arch) && model == null ? DataType.BFLOAT16 : DataType.FLOAT;
    DataType t = switch (tables.toLowerCase()) {
      case "f32" -> DataType.FLOAT;
      case "bf16" -> DataType.BFLOAT16;
      case "f16" -> DataType.HALF;
      default -> throw new IllegalArgumentException("--tables must be f32, bf16 or f16, got '" + tables + "'");
    };
    if (t != DataType.FLOAT && (m.equals("full") || "gpt2".equals(arch) || model != null))
      throw new IllegalArgumentException("--tables " + tables + " needs a frozen random LLaMA (--arch llama, a method other than full)");
    return t;
  }

  /** @param positions positions a step takes (virtual tokens included); a random model has at least these */
  private CausalLm build(boolean full, UnaryOperator<LinearLayer> layerLinears, DataType tableType, int positions)
      throws Exception {
    if (model != null) {
      if (arch != null) throw new IllegalArgumentException("give --arch (random weights) or --model DIR, not both");
      String type = com.fasterxml.jackson.databind.json.JsonMapper.builder().build()
          .readTree(model.resolve("config.json").toFile()).path("model_type").asText("llama");
      CausalLm loaded = type.equals("gpt2") ? Gpt2Model.load(model, DataType.FLOAT, full) : LlamaModel.load(model, DataType.FLOAT, full);
      loaded.mapLinears(layerLinears);   // qlora: quantized after loading
      return loaded;
    }
    switch (arch) {
      case "llama" -> {
        int kv = kvHeads == null ? heads : kvHeads;
        int inter = intermediate == null ? 256 * ((int) Math.round(hidden * 8.0 / 3 / 256)) : intermediate;
        LlamaConfig c = LlamaConfig.llama(vocab, hidden, inter, layers, heads, kv, Math.max(positions, 2048), false);
        return LlamaModel.random(c, DataType.FLOAT, seed, full, layerLinears, tableType);
      }
      case "gpt2" -> {
        if (kvHeads != null && kvHeads != heads) throw new IllegalArgumentException("GPT-2 has no grouped-query attention: --kv-heads must equal --heads");
        if (hidden % heads != 0) throw new IllegalArgumentException("--hidden " + hidden + " is not a multiple of --heads " + heads);
        Gpt2Config c = new Gpt2Config(vocab, Math.max(positions, 1024), hidden, layers, heads, intermediate == null ? 4 * hidden : intermediate,
            1e-5, true, 0.02);
        Gpt2Model g = Gpt2Model.random(c, DataType.FLOAT, seed, full);
        g.mapLinears(layerLinears);
        return g;
      }
      default -> throw new IllegalArgumentException("--arch must be llama or gpt2 (BERT: bench train), got '" + arch + "'");
    }
  }

  /** PEFT's default IA3 targets: LLaMA k_proj, v_proj, down_proj (feed-forward: down_proj); GPT-2 c_attn, mlp.c_proj. */
  private Ia3Config ia3Config(String kind) {
    if (targets != null) return new Ia3Config(targets, kind.equals("gpt2") ? List.of("mlp.c_proj") : List.of("down_proj"));
    return kind.equals("gpt2") ? new Ia3Config(List.of("c_attn", "mlp.c_proj"), List.of("mlp.c_proj"))
        : new Ia3Config(List.of("k_proj", "v_proj", "down_proj"), List.of("down_proj"));
  }

  /**
   * Useful FLOPs of one step, 2 per multiply-add, counted from the shapes (n = batch·(seq + prompt rows) rows through
   * the layers, n' = batch·(seq−1) rows with a target, k = seq + prompt rows + prefix keys keys per query):
   * forward = 2·n·(weights of all layer linears) + 2·n'·V·H (LM head) + per layer 4·n·k·(heads·hd) (scores and
   * values, the full square as computed); backward input gradients = 2·n·(layer linears) + 2·n'·V·H
   * + 8·n·k·(heads·hd) per layer, for the layers gradients flow through (from the lowest trainable one up; that
   * layer's q/k/v inputs excepted, unless a prompt below it trains; a prefix trains in every layer's attention);
   * weight gradients = 2·n·(in·out) for each trainable matrix only (all of them and the head for full: 6·N·tokens
   * in total plus attention); LoRA's products 3 × 2·n·r·(in+out) per adapted module. Element-wise work, embeddings,
   * dequantization and the optimizer are not counted.
   *
   * @param promptRows prompt tuning's virtual rows before every example (0: none)
   * @param prefixKeys prefix tuning's virtual keys in every layer (0: none)
   */
  static double usefulFlops(CausalLm lm, int batch, int seq, int promptRows, int prefixKeys) {
    double n = (double) batch * (seq + promptRows), nHead = (double) batch * (seq - 1);
    double keys = seq + promptRows + prefixKeys;
    List<LinearLayer> linears = lm.linears();
    int layers = (int) linears.stream().map(l -> l.name().replaceAll("^((model\\.layers|transformer\\.h)\\.\\d+)\\..*", "$1")).distinct().count();
    double layerWeights = 0, weightGrads = 0, lora = 0, qkvWidth = 0;
    int lowest = Integer.MAX_VALUE;
    for (LinearLayer l : linears) {
      double io = (double) l.inFeatures() * l.outFeatures();
      layerWeights += io;
      LinearLayer base = l.base();
      boolean baseTrainable = base.params().stream().anyMatch(p -> p.isTrainable() && p.shape.length == 2);
      if (baseTrainable) weightGrads += io;
      if (l instanceof LoraLinear ll) lora += 2 * n * ll.loraA().shape[0] * (l.inFeatures() + l.outFeatures());
      if (l.hasTrainable()) lowest = Math.min(lowest, layerIndex(l.name()));
      if (l.name().endsWith("q_proj") || l.name().endsWith("c_attn")) qkvWidth += l.name().endsWith("c_attn") ? l.outFeatures() / 3.0 : l.outFeatures();
    }
    boolean fullModel = lm.head().params().stream().anyMatch(Param::isTrainable);
    boolean inputTrains = fullModel || promptRows > 0;   // the lowest layer's q/k/v inputs need their gradient
    if (inputTrains || prefixKeys > 0) lowest = 0;
    double attnPerLayer = 4 * n * keys * (qkvWidth / layers);
    double headMatrix = (double) lm.head().inFeatures() * lm.head().outFeatures();
    double forward = 2 * n * layerWeights + 2 * nHead * headMatrix + layers * attnPerLayer;
    int through = lowest == Integer.MAX_VALUE ? 0 : layers - lowest;
    double inputGrads = lowest == Integer.MAX_VALUE ? 0
        : 2 * n * layerWeights * through / layers + 2 * nHead * headMatrix + through * 2 * attnPerLayer;
    if (!inputTrains && through > 0) {   // the lowest layer's q/k/v inputs need no gradient (nothing below trains)
      for (LinearLayer l : linears) {
        if (layerIndex(l.name()) == lowest && l.name().matches(".*(q_proj|k_proj|v_proj|c_attn)$"))
          inputGrads -= 2 * n * l.inFeatures() * l.outFeatures();
      }
    }
    double wGrads = 2 * n * weightGrads + (fullModel ? 2 * nHead * headMatrix : 0);
    return forward + inputGrads + wGrads + 3 * lora;
  }

  private static int layerIndex(String module) {
    var m = java.util.regex.Pattern.compile("^(?:model\\.layers|transformer\\.h)\\.(\\d+)\\.").matcher(module);
    return m.find() ? Integer.parseInt(m.group(1)) : 0;
  }
}
