package dev.peftspark.core.train;

import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.optim.Optimizer;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.lora.LoraConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A/B of {@link RowSplit}'s modes in one JVM, so that a shared machine's load drifts over both alike: issue 4's
 * LLaMA shape (hidden 512, 4 layers, 8 heads, intermediate 1376, vocab 8000, 4 × 256 tokens), steps alternating
 * {@code ops} and {@code rows} (order swapped every round), each step timed by wall clock and by the process's CPU
 * time. Not a test; run from the repository root after {@code mvn -q -o -pl core test-compile}:
 *
 * <pre>
 * mvn -q -o -pl core dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=/tmp/core-cp.txt
 * java @conf/jvm.options -Xmx8g -cp core/target/test-classes:core/target/classes:$(cat /tmp/core-cp.txt) \
 *   dev.peftspark.core.train.RowSplitBench lora 2 10     # method (lora | full), threads, rounds
 * </pre>
 */
public final class RowSplitBench {
  private RowSplitBench() {}

  public static void main(String[] args) {
    Method method = Method.parse(args.length > 0 ? args[0] : "lora");
    int threads = args.length > 1 ? Integer.parseInt(args[1]) : 2, rounds = args.length > 2 ? Integer.parseInt(args[2]) : 10;
    Nd4jSetup.ensure();
    Nd4j.factory().blas().setMaxThreads(threads);
    LlamaConfig c = LlamaConfig.llama(8000, 512, 1376, 4, 8, 8, 2048, false);
    PeftCausalLm model = PeftCausalLm.create(method, new LoraConfig(8, 16, 0.0, List.of("q_proj", "v_proj"), false, "none", false),
        null, t -> LlamaModel.random(c, DataType.FLOAT, 1, t), DataType.FLOAT, 1);
    int batch = 4, seq = 256;
    SplittableRandom rng = new SplittableRandom(1);
    int[][] ids = new int[batch][seq], mask = new int[batch][seq];
    for (int b = 0; b < batch; b++) for (int i = 0; i < seq; i++) { ids[b][i] = rng.nextInt(c.vocabSize()); mask[b][i] = 1; }
    LmBatch rows = new LmBatch(ids, mask, null, batch * seq);
    var ps = model.params();
    Optimizer opt = Optimizer.create("adamw", ps.size(), Nd4j.ones(DataType.FLOAT, Math.max(1, ps.size())), 0.0, 0, 0.9, 0.999, 1e-8);
    var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    RowSplit.Mode[] modes = RowSplit.Mode.values();
    double[][] wall = new double[modes.length][rounds], cpu = new double[modes.length][rounds];
    for (int r = -2; r < rounds; r++) {   // two warm-up rounds
      for (int j = 0; j < modes.length; j++) {
        int k = (r & 1) == 0 ? j : modes.length - 1 - j;
        RowSplit.mode = modes[k];
        long c0 = os.getProcessCpuTime(), t0 = System.nanoTime();
        ps.zeroGrad();
        Trainer.accumulate(model, rows, rows.weight(), batch);
        opt.step(ps.values(), ps.grads(), 1e-4);
        if (r >= 0) {
          wall[k][r] = (System.nanoTime() - t0) / 1e6;
          cpu[k][r] = (os.getProcessCpuTime() - c0) / 1e6;
        }
      }
    }
    double load = os.getSystemLoadAverage();
    for (int k = 0; k < modes.length; k++) {
      double[] w = wall[k].clone();
      Arrays.sort(w);
      System.out.printf("{\"method\":\"%s\",\"threads\":%d,\"step_split\":\"%s\",\"rounds\":%d,\"step_ms_best\":%.0f,"
              + "\"step_ms_median\":%.0f,\"step_ms\":%.0f,\"cpu_ms_per_step\":%.0f,\"load\":%.2f}%n", method.key(), threads,
          modes[k].name().toLowerCase(), rounds, w[0], w[w.length / 2], Arrays.stream(w).average().orElse(0),
          Arrays.stream(cpu[k]).average().orElse(0), load);
    }
  }
}
