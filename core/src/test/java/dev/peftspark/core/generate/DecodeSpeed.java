package dev.peftspark.core.generate;

import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.Gpt2Config;
import dev.peftspark.core.model.Gpt2Model;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import dev.peftspark.core.nn.CausalMask;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Decoding speed, KV-cached ({@link Generator}) against recomputing the whole sequence for every new token, on
 * random weights: {@code java -cp <core test classpath> dev.peftspark.core.generate.DecodeSpeed [llama|gpt2] [prompt] [new]}.
 * Prints wall and process-CPU seconds (CPU time counts the BLAS threads too, so it is the figure to compare on a busy
 * machine). Not a test: a measurement to rerun.
 */
public final class DecodeSpeed {
  public static void main(String[] args) {
    String arch = args.length > 0 ? args[0] : "llama";
    int promptLen = args.length > 1 ? Integer.parseInt(args[1]) : 32, fresh = args.length > 2 ? Integer.parseInt(args[2]) : 64;
    CausalLm m = arch.equals("gpt2") ? Gpt2Model.random(Gpt2Config.small(), DataType.FLOAT, 1, false)
        : LlamaModel.random(LlamaConfig.llama(8000, 512, 1376, 4, 8, 8, 1024, false), DataType.FLOAT, 1, false);
    SplittableRandom rng = new SplittableRandom(1);
    int[] prompt = new int[promptLen];
    for (int i = 0; i < promptLen; i++) prompt[i] = rng.nextInt(m.vocabSize());
    Generator.generate(m, prompt, Generator.Settings.greedy(4, -1));   // warm-up
    long w0 = System.nanoTime(), c0 = cpu();
    Generator.Result r = Generator.generate(m, prompt, Generator.Settings.greedy(fresh, -1));
    long w1 = System.nanoTime(), c1 = cpu();
    int[] seq = prompt;
    for (int i = 0; i < fresh; i++) {   // no cache: the whole sequence again, head on the last row only
      int[][] mask = {new int[seq.length]};
      Arrays.fill(mask[0], 1);
      CausalMask cm = m.mask(mask);
      INDArray h = m.hidden(new int[][] {seq}, cm);
      INDArray logits = m.head().forward(h.getRow(seq.length - 1).reshape(1, h.size(1)));
      seq = Arrays.copyOf(seq, seq.length + 1);
      seq[seq.length - 1] = Sampler.argmax(logits.castTo(DataType.DOUBLE).toDoubleVector());
    }
    long w2 = System.nanoTime(), c2 = cpu();
    boolean same = Arrays.equals(r.tokens(), Arrays.copyOfRange(seq, promptLen, seq.length));
    System.out.printf(Locale.ROOT, "{\"arch\": \"%s\", \"prompt\": %d, \"new_tokens\": %d, \"cached_wall_s\": %.3f, \"cached_cpu_s\": %.3f,"
            + " \"cached_tokens_per_s\": %.1f, \"prefill_ms\": %.1f, \"recompute_wall_s\": %.3f, \"recompute_cpu_s\": %.3f,"
            + " \"recompute_tokens_per_s\": %.1f, \"same_tokens\": %b}%n",
        arch, promptLen, fresh, (w1 - w0) / 1e9, (c1 - c0) / 1e9, fresh * 1e9 / (w1 - w0), r.prefillNanos() / 1e6,
        (w2 - w1) / 1e9, (c2 - c1) / 1e9, fresh * 1e9 / (w2 - w1), same);
  }

  private static long cpu() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }
}
