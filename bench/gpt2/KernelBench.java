import dev.peftspark.core.nn.GeluTanh;
import dev.peftspark.core.nn.LayerNorm;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LmHeadLoss;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.RmsNorm;
import dev.peftspark.core.nn.Rope;
import dev.peftspark.core.nn.SwiGlu;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.lang.management.ManagementFactory;

/**
 * GPT-2 small's element-wise kernels and LM head + loss, timed alone at the step's shapes (seq 256): process CPU and
 * wall time per call. Runs against any checkout's classes (bench/gpt2/kernel_bench.sh), so that two builds compare
 * on the same shapes without the rest of the step's noise. Args: THREADS [gpt2|llama] (llama: the LLaMA bench
 * shape, batch 4 × seq 256, hidden 512, 8 heads, vocabulary 8,000: RMSNorm, RoPE and the head + loss).
 */
public class KernelBench {
  private static final com.sun.management.OperatingSystemMXBean OS =
      (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

  public static void main(String[] args) {
    Nd4jSetup.ensure();
    Nd4j.factory().blas().setMaxThreads(Integer.parseInt(args[0]));
    Nd4j.getRandom().setSeed(1);
    if (args.length > 1 && args[1].equals("llama")) {
      llama();
      return;
    }
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

  private static void llama() {
    INDArray x = Nd4j.randn(DataType.FLOAT, 1024, 512), dy = Nd4j.randn(DataType.FLOAT, 1024, 512);
    RmsNorm norm = new RmsNorm("norm", Param.frozen("w", Nd4j.ones(DataType.FLOAT, 512)), 1e-6);
    time("rmsnorm fwd+bwd 1024x512", 500, () -> { norm.forward(x); norm.backward(dy); });
    Rope rope = new Rope(64, 10000);
    int[] positions = new int[1024];
    for (int i = 0; i < positions.length; i++) positions[i] = i % 256;
    Rope.Tables tables = rope.tables(positions, DataType.FLOAT);
    time("rope fwd+bwd 1024x512", 500, () -> { rope.rotate(x, tables, false); rope.rotate(dy, tables, true); });
    // SwiGLU's element-wise work at [1024, 1376] around projections from/to a hidden size of 8, whose products are small
    SwiGlu mlp = new SwiGlu(linear("gate", 1376, 8), linear("up", 1376, 8), linear("down", 8, 1376));
    INDArray x8 = Nd4j.randn(DataType.FLOAT, 1024, 8), dy8 = Nd4j.randn(DataType.FLOAT, 1024, 8);
    time("swiglu fwd+bwd 1024x1376 (H=8)", 200, () -> { mlp.forward(x8); mlp.backward(dy8, true); });
    INDArray w = Nd4j.randn(DataType.FLOAT, 8000, 512).muli(0.02), hid = Nd4j.randn(DataType.FLOAT, 1024, 512);
    int[] targets = new int[1024];
    for (int i = 0; i < targets.length; i++) targets[i] = i % 256 == 255 ? -100 : (i * 7919) % 8000;
    Linear head = new Linear("lm_head", Param.frozen("w", w), null);
    time("lm head+loss 1020 rows, V 8000", 20, () -> LmHeadLoss.compute(hid, targets, head, 1.0 / 1020, 2097, true));
  }

  private static Linear linear(String name, int out, int in) {
    return new Linear(name, Param.frozen(name, Nd4j.randn(DataType.FLOAT, out, in).muli(0.5)), null);
  }

  private static void time(String name, int reps, Runnable body) {
    for (int i = 0; i < Math.max(2, reps / 10); i++) body.run();   // JIT warm-up
    long cpu = OS.getProcessCpuTime(), wall = System.nanoTime();
    for (int i = 0; i < reps; i++) body.run();
    System.out.printf("%-32s cpu %8.2f ms  wall %8.2f ms  per call%n", name,
        (OS.getProcessCpuTime() - cpu) / 1e6 / reps, (System.nanoTime() - wall) / 1e6 / reps);
  }
}
