package dev.peftspark.spark.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.nn.Gemm;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.spark.job.BaseModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Benchmarks that print one JSON line each: BLAS peak ({@code sgemm}) and training steps ({@code train}). */
@Command(name = "bench", mixinStandardHelpOptions = true, subcommands = {BenchCommand.Sgemm.class, BenchCommand.Train.class, BenchSpark.class},
    description = {"Measure speed; prints one JSON line on stdout.",
        "bench --arch llama|gpt2 --hidden H --layers L --heads NH --kv-heads KV --intermediate I --vocab V --seq T "
            + "--batch B --method lora|dora|qlora|ia3|prompt_tuning|prefix_tuning|full --rank R --targets q_proj,v_proj "
            + "--virtual-tokens NV --steps N --warmup W --threads P: "
            + "training steps of a causal LM with random weights (or --model DIR), synthetic tokens, AdamW. "
            + "tokens_per_s = batch·seq / mean step time. gflops = useful FLOPs / step time, 2 per multiply-add: forward "
            + "2·tokens·(layer weights) + LM head + attention 4·tokens·seq·(heads·head_dim) per layer; backward input "
            + "gradients 2× the forward for the layers gradients flow through (attention's four products); weight "
            + "gradients only for trainable matrices (full: 6·N·tokens plus attention); LoRA's products 3·2·tokens·r·(in+out); "
            + "prompt tuning's virtual rows count as tokens in the layers, prefix tuning's virtual keys in attention. "
            + "peak_rss_mb = VmHWM of /proc/self/status: the whole process, JVM heap and ND4J off-heap alike.",
        "bench sgemm | bench train | bench spark: BLAS peak, BERT classifier steps, Spark runner vs local runner."})
final class BenchCommand implements Callable<Integer> {
  static final ObjectMapper JSON = new ObjectMapper();

  @picocli.CommandLine.Mixin LmBench lm = new LmBench();
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() throws Exception {
    if (!lm.requested()) {
      System.err.println("error: choose a benchmark: --arch llama|gpt2 (or --model DIR), sgemm, train or spark");
      return 2;
    }
    spec.commandLine().getOut().println(JSON.writeValueAsString(lm.run()));
    spec.commandLine().getOut().flush();
    return 0;
  }

  /** Peak resident memory of this process (heap + ND4J off-heap + code), from /proc/self/status VmHWM. */
  static double peakRssMb() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("\\D", "")) / 1024.0;
      }
    } catch (Exception ignored) {
      // not Linux: reported as -1
    }
    return -1;
  }

  @Command(name = "sgemm", mixinStandardHelpOptions = true, description = "Single-precision GEMM GFLOP/s (the BLAS peak).")
  static final class Sgemm implements Callable<Integer> {
    @Option(names = "--size", defaultValue = "1024", description = "Square matrix size (default ${DEFAULT-VALUE}).")
    int n;
    @Option(names = "--reps", defaultValue = "30", description = "Timed repetitions (default ${DEFAULT-VALUE}).")
    int reps;
    @Option(names = "--library", defaultValue = "nd4j", description = "nd4j: ND4J's gemm (OpenBLAS on its own threads); "
        + "onednn | openblas: the training step's path, one single-threaded product per thread (default ${DEFAULT-VALUE}).")
    String library;
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      Nd4jSetup.ensure();
      boolean nd4j = library.equals("nd4j");
      if (!nd4j) Gemm.setSgemm(library);   // refuses any other name
      INDArray a = Nd4j.rand(DataType.FLOAT, n, n), b = Nd4j.rand(DataType.FLOAT, n, n), c = Nd4j.create(DataType.FLOAT, n, n);
      Runnable product = nd4j ? () -> Nd4j.gemm(a, b, c, false, false, 1.0, 0.0) : () -> Gemm.gemm(a, b, c, false, false, 1.0, 0.0);
      for (int i = 0; i < 5; i++) product.run();
      double best = 0, total = 0;
      for (int i = 0; i < reps; i++) {
        long t = System.nanoTime();
        product.run();
        double s = (System.nanoTime() - t) / 1e9;
        total += s;
        best = Math.max(best, 2.0 * n * n * n / s / 1e9);
      }
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("bench", "sgemm");
      out.put("size", n);
      out.put("gflops", 2.0 * n * n * n * reps / total / 1e9);
      out.put("gflops_best", best);
      out.put("backend", String.valueOf(Nd4j.getExecutioner().getEnvironmentInformation().get("blas.vendor")));
      out.put("library", library);
      out.put("cpu", Nd4j.getExecutioner().getEnvironmentInformation().get("cores"));
      spec.commandLine().getOut().println(JSON.writeValueAsString(out));
      spec.commandLine().getOut().flush();
      return 0;
    }
  }

  @Command(name = "train", mixinStandardHelpOptions = true,
      description = "Training steps of a BERT classifier on synthetic tokens (real weights for --model minilm).")
  static final class Train implements Callable<Integer> {
    @Option(names = "--model", defaultValue = "minilm") String model;
    @Option(names = "--method", defaultValue = "lora", description = "lora | qlora | ia3 | full | head") String method;
    @Option(names = "--rank", defaultValue = "8") int rank;
    @Option(names = "--targets", defaultValue = "query,value", split = ",") List<String> targets;
    @Option(names = "--batch", defaultValue = "32") int batch;
    @Option(names = "--seq", defaultValue = "32", description = "Tokens per example (no padding).") int seq;
    @Option(names = "--steps", defaultValue = "10") int steps;
    @Option(names = "--warmup", defaultValue = "3") int warmup;

    @Override
    public Integer call() throws Exception {
      BaseModel base = BaseModel.load(model);
      BertConfig c = base.config();
      Method m = Method.parse(method);
      PeftClassifier pc = PeftClassifier.create(m, new LoraConfig(rank, 2.0 * rank, 0.0, targets, false, "none", false),
          c, base.weights(), 2, Pooling.Mode.MEAN, DataType.FLOAT, 1);
      SplittableRandom rng = new SplittableRandom(1);
      int[][] ids = new int[batch][seq], mask = new int[batch][seq];
      int[] labels = new int[batch];
      for (int i = 0; i < batch; i++) {
        for (int t = 0; t < seq; t++) { ids[i][t] = 1000 + rng.nextInt(c.vocabSize() - 1000); mask[i][t] = 1; }
        labels[i] = i % 2;
      }
      var opt = dev.peftspark.core.optim.Optimizer.create("adamw", pc.params().size(), pc.decayMask(), 0, 0, 0.9, 0.999, 1e-8);
      Runnable step = () -> {
        pc.params().zeroGrad();
        try (var ws = Nd4jSetup.stepWorkspace()) {
          pc.model().trainStep(ids, mask, labels, 1.0);
        }
        opt.step(pc.params().values(), pc.params().grads(), 1e-4);
      };
      for (int i = 0; i < warmup; i++) step.run();
      long t0 = System.nanoTime();
      for (int i = 0; i < steps; i++) step.run();
      double s = (System.nanoTime() - t0) / 1e9 / steps;
      double flops = usefulFlops(c, m, pc, batch, seq);
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("bench", "train");
      out.put("model", model);
      out.put("method", m.key());
      out.put("batch", batch);
      out.put("seq", seq);
      out.put("steps", steps);
      out.put("step_ms", s * 1000);
      out.put("examples_per_s", batch / s);
      out.put("tokens_per_s", batch * seq / s);
      out.put("gflops", flops / s / 1e9);
      out.put("trainable", pc.trainableCount());
      out.put("total", pc.totalCount());
      out.put("peak_rss_mb", peakRssMb());
      System.out.println(JSON.writeValueAsString(out));
      return 0;
    }

    /**
     * FLOPs a step needs, counted analytically (2 per multiply-add): forward GEMMs and attention products; backward
     * input gradients (same as forward) and attention's 4 backward products (2× forward); weight gradients only
     * for trainable matrices (all of them in full fine-tuning); LoRA's own products; no encoder backward for a
     * head-only run. Element-wise work, embeddings and the head are not counted.
     */
    static double usefulFlops(BertConfig c, Method m, PeftClassifier pc, int batch, int seq) {
      double n = (double) batch * seq, h = c.hiddenSize(), i = c.intermediateSize(), layers = c.numHiddenLayers();
      double linear = 2 * n * (4 * h * h + 2 * h * i);
      double attention = 2 * 2 * batch * (double) seq * seq * h;
      double fwd = layers * (linear + attention), bwd = layers * (linear + 2 * attention);
      if (m == Method.HEAD) bwd = 0;                   // nothing below the head is trainable: no encoder backward
      if (m == Method.FULL) bwd += layers * linear;
      double lora = 0;
      for (var l : pc.loraLayers()) lora += 2 * n * l.loraA().shape[0] * (l.inFeatures() + l.outFeatures());
      return fwd + bwd + 3 * lora;
    }
  }
}
