package dev.peftspark.core.peft.prompt;

import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.train.LmBatch;
import org.nd4j.linalg.api.buffer.DataType;

import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Cost of a training step (forward + backward, no optimizer) for LoRA (q,v, r 8), prompt tuning and prefix tuning
 * (20 virtual tokens each) on one random LLaMA (hidden 512, 4 layers, 8 heads on 2 key/value heads, vocab 8000),
 * batch 4 × 128 tokens: {@code java -cp <core test classpath> dev.peftspark.core.peft.prompt.PromptStepSpeed [steps]}.
 * Prints wall and process-CPU milliseconds per step (CPU time counts the BLAS threads, so it is the figure to compare
 * on a busy machine). Not a test: a measurement to rerun.
 */
public final class PromptStepSpeed {
  public static void main(String[] args) {
    int steps = args.length > 0 ? Integer.parseInt(args[0]) : 5, batch = 4, seq = 128;
    LlamaConfig c = LlamaConfig.llama(8000, 512, 1376, 4, 8, 2, 1024, false);
    var weights = LlamaModel.randomWeights(c, DataType.FLOAT, 1);
    SplittableRandom rng = new SplittableRandom(1);
    int[][] ids = new int[batch][seq], mask = new int[batch][seq];
    for (int b = 0; b < batch; b++) for (int t = 0; t < seq; t++) { ids[b][t] = rng.nextInt(c.vocabSize()); mask[b][t] = 1; }
    LmBatch data = new LmBatch(ids, mask, null, batch * seq);
    var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    for (Method m : List.of(Method.LORA, Method.PROMPT_TUNING, Method.PREFIX_TUNING)) {
      var model = PeftCausalLm.create(m, new LoraConfig(8, 16, 0, List.of("q_proj", "v_proj"), false, "none", false), null,
          PromptConfig.random(20), t -> LlamaModel.fromWeights(c, weights, DataType.FLOAT, t), DataType.FLOAT, 1);
      Runnable step = () -> {
        model.params().zeroGrad();
        try (var ws = Nd4jSetup.stepWorkspace()) {
          model.trainStep(data, 1.0);
        }
      };
      for (int i = 0; i < 2; i++) step.run();
      long cpu0 = os.getProcessCpuTime(), t0 = System.nanoTime();
      for (int i = 0; i < steps; i++) step.run();
      double wall = (System.nanoTime() - t0) / 1e6 / steps, cpu = (os.getProcessCpuTime() - cpu0) / 1e6 / steps;
      System.out.println(String.format(Locale.ROOT, "%-14s trainable %7d  wall %7.1f ms/step  cpu %7.1f ms/step",
          m.key(), model.trainableCount(), wall, cpu));
    }
  }
}
