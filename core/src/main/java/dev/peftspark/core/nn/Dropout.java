package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.SplittableRandom;

/** Inverted dropout with a seeded Java RNG, so runs repeat bit for bit whatever ND4J's RNG does. */
public final class Dropout {
  private final double p;
  private final SplittableRandom rng;
  private INDArray mask;       // [N, D] 0 or 1/(1-p)
  private boolean training = true;
  private boolean reuseMask;   // finite-difference checks need the same mask on every forward
  private boolean repeat;      // the next forward reuses the mask once (gradient checkpointing's recompute)

  public Dropout(double p, long seed) {
    if (p < 0 || p >= 1) throw new IllegalArgumentException("dropout must be in [0, 1), got " + p);
    this.p = p;
    this.rng = new SplittableRandom(seed);
  }

  public void setTraining(boolean training) { this.training = training; }

  public boolean active() { return training && p > 0; }

  /** Keep the current mask for later forwards (gradient checks only). */
  void reuseMask(boolean reuse) { this.reuseMask = reuse; }

  /** Gradient checkpointing: the next forward (the recompute) applies the current mask again instead of drawing one. */
  public void repeatNextForward() { repeat = active(); }

  public INDArray forward(INDArray x) {
    boolean again = repeat;
    repeat = false;
    if (!active()) { mask = null; return x; }
    if ((reuseMask || again) && mask != null) return x.mul(mask);
    long n = x.length();
    double keep = 1.0 / (1.0 - p);
    double[] m = new double[(int) n];
    for (int i = 0; i < n; i++) m[i] = rng.nextDouble() < p ? 0.0 : keep;
    // outside any workspace: a checkpointed layer's arena is recycled before the recompute that repeats the mask
    try (var ws = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
      mask = Nd4j.createFromArray(m).reshape(x.shape()).castTo(x.dataType());
    }
    return x.mul(mask);
  }

  public INDArray backward(INDArray dy) {
    return mask == null ? dy : dy.mul(mask);
  }
}
