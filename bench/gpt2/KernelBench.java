import dev.peftspark.core.nn.GeluTanh;
import dev.peftspark.core.nn.LayerNorm;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LmHeadLoss;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.lang.management.ManagementFactory;

/**
 * GPT-2 small's element-wise kernels and LM head + loss, timed alone at the step's shapes (seq 256): process CPU and
 * wall time per call. Runs against any checkout's classes (bench/gpt2/kernel_bench.sh), so that two builds compare
 * on the same shapes without the rest of the step's noise. Args: THREADS.
 */
public class KernelBench {
  private static final com.sun.management.OperatingSystemMXBean OS =
      (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

  public static void main(String[] args) {
    Nd4jSetup.ensure();
    Nd4j.factory().blas().setMaxThreads(Integer.parseInt(args[0]));
    Nd4j.getRandom().setSeed(1);
    INDArray x = Nd4j.randn(DataType.FLOAT, 256, 3072), dy = Nd4j.randn(DataType.FLOAT, 256, 3072);
    time("gelu_new fwd+bwd 256x3072", 100, () -> { GeluTanh g = new GeluTanh(); g.forward(x); g.backward(dy); });
    INDArray xh = Nd4j.randn(DataType.FLOAT, 256, 768), dh = Nd4j.randn(DataType.FLOAT, 256, 768);
    LayerNorm ln = new LayerNorm("ln", Param.frozen("g", Nd4j.ones(DataType.FLOAT, 768)), Param.frozen("b", Nd4j.zeros(DataType.FLOAT, 768)), 1e-5);
    time("layernorm fwd+bwd 256x768", 500, () -> { ln.forward(xh); ln.backward(dh); });
    INDArray w = Nd4j.randn(DataType.FLOAT, 50257, 768).muli(0.02), hid = Nd4j.randn(DataType.FLOAT, 256, 768);
    int[] targets = new int[256];
    for (int i = 0; i < 255; i++) targets[i] = (i * 7919) % 50257;
    targets[255] = -100;   // the last position has no next token
    Linear head = new Linear("lm_head", Param.frozen("w", w), null);   // tied and frozen, as under LoRA
    for (int chunk : new int[] {83, 170, 255}) {
      time("lm head+loss, chunks of " + chunk, 5, () -> LmHeadLoss.compute(hid, targets, head, 1.0 / 255, chunk, true));
    }
  }

  private static void time(String name, int reps, Runnable body) {
    for (int i = 0; i < Math.max(2, reps / 10); i++) body.run();   // JIT warm-up
    long cpu = OS.getProcessCpuTime(), wall = System.nanoTime();
    for (int i = 0; i < reps; i++) body.run();
    System.out.printf("%-32s cpu %8.2f ms  wall %8.2f ms  per call%n", name,
        (OS.getProcessCpuTime() - cpu) / 1e6 / reps, (System.nanoTime() - wall) / 1e6 / reps);
  }
}
