package dev.peftspark.core.generate;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from one row of logits: the argmax (the lowest id on ties) when {@code temperature} is 0;
 * otherwise a draw from {@code softmax(logits / temperature)} restricted to the nucleus, the fewest most likely
 * tokens whose probabilities reach {@code topP} (Hugging Face's TopPLogitsWarper), from a generator seeded once.
 */
public final class Sampler {
  private final double temperature, topP;
  private final SplittableRandom rng;

  public Sampler(double temperature, double topP, long seed) {
    if (!(temperature >= 0) || Double.isInfinite(temperature))
      throw new IllegalArgumentException("temperature must be a finite number >= 0 (0 = greedy), got " + temperature);
    if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
    this.temperature = temperature;
    this.topP = topP;
    this.rng = new SplittableRandom(seed);
  }

  public boolean greedy() { return temperature == 0; }

  /** The next token for {@code logits [V]} or {@code [1, V]}. */
  public int next(INDArray logits) {
    double[] z = logits.castTo(DataType.DOUBLE).reshape(logits.length()).toDoubleVector();
    return greedy() ? argmax(z) : sample(z);
  }

  public static int argmax(double[] z) {
    int best = 0;
    for (int i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
    return best;
  }

  private int sample(double[] z) {
    int v = z.length;
    double max = z[argmax(z)];
    double[] p = new double[v];
    double sum = 0;
    for (int i = 0; i < v; i++) sum += p[i] = Math.exp((z[i] - max) / temperature);
    Integer[] order = new Integer[v];
    for (int i = 0; i < v; i++) order[i] = i;
    double[] probs = p;
    Arrays.sort(order, (a, b) -> probs[a] != probs[b] ? Double.compare(probs[b], probs[a]) : Integer.compare(a, b));
    int keep = 0;
    double mass = 0;
    while (keep < v && (keep == 0 || mass < topP * sum)) mass += p[order[keep++]];
    double u = rng.nextDouble() * mass, acc = 0;
    for (int k = 0; k < keep; k++) {
      acc += p[order[k]];
      if (u < acc) return order[k];
    }
    return order[keep - 1];   // u within rounding of the total
  }
}
