package dev.peftspark.core.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;
import java.util.SplittableRandom;

import static dev.peftspark.core.nn.GradCheck.randn;

/** A small random LLaMA (grouped-query: 4 heads, 2 key/value heads) for gradient checks and fast tests. */
public final class TinyLlama {
  private TinyLlama() {}

  /** Weights of std 0.3 (not 0.02) so that every gradient is well above finite-difference round-off. */
  public static LlamaConfig config(boolean tied, boolean qkvBias) {
    return new LlamaConfig(qkvBias ? "qwen2" : "llama", 29, 16, 24, 2, 4, 2, 4, 32, 1e-6, 10000.0, null, tied,
        qkvBias, false, false, 0, 0.3);
  }

  /** Random weights with norm weights and biases perturbed away from 1 and 0. */
  public static Map<String, INDArray> weights(LlamaConfig c, DataType dtype, long seed) {
    Map<String, INDArray> w = LlamaModel.randomWeights(c, dtype, seed);
    SplittableRandom rng = new SplittableRandom(seed);
    for (var e : w.entrySet()) {
      if (e.getKey().endsWith("norm.weight")) e.getValue().addi(randn(rng, e.getValue().shape()).muli(0.2).castTo(dtype));
      if (e.getKey().endsWith(".bias")) e.getValue().addi(randn(rng, e.getValue().shape()).muli(0.2).castTo(dtype));
    }
    return w;
  }
}
