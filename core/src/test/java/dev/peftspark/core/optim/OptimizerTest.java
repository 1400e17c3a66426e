package dev.peftspark.core.optim;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Optimizer updates against the formulas of torch.optim, written out by hand. */
class OptimizerTest {
  private static INDArray vec(double... v) { return Nd4j.createFromArray(v); }

  @Test
  void adamwTwoStepsMatchHandComputation() {
    INDArray p = vec(1.0, -2.0), mask = vec(1.0, 0.0);
    Optimizer opt = Optimizer.create("adamw", 2, mask, 0.1, 0, 0.9, 0.999, 1e-8);
    double lr = 0.01;
    double[] pp = {1.0, -2.0}, m = new double[2], v = new double[2];
    double[][] grads = {{0.5, -1.0}, {0.25, 2.0}};
    for (int t = 1; t <= 2; t++) {
      opt.step(p, vec(grads[t - 1]), lr);
      for (int i = 0; i < 2; i++) {
        double g = grads[t - 1][i];
        pp[i] -= lr * 0.1 * pp[i] * (i == 0 ? 1 : 0);
        m[i] = 0.9 * m[i] + 0.1 * g;
        v[i] = 0.999 * v[i] + 0.001 * g * g;
        double mh = m[i] / (1 - Math.pow(0.9, t)), vh = v[i] / (1 - Math.pow(0.999, t));
        pp[i] -= lr * mh / (Math.sqrt(vh) + 1e-8);
      }
    }
    assertArrayEquals(pp, p.toDoubleVector(), 1e-12);
  }

  /**
   * The fused single-precision step against the ND4J reference run in double on the same (widened) state. The
   * fused loop computes in float (as PyTorch does), so each result may differ from the exact one by its float
   * roundings, bounded per element with u = 2^-24 (float's unit roundoff): m = m₀β₁ + g(1−β₁) has two products,
   * two rounded constants and a sum, ≤ 4u·(|m₀β₁| + |g(1−β₁)|); v (one more product, g·g) ≤ 5u·(|v₀β₂| + g²(1−β₂));
   * p carries the update's error from m and v (through m/√v) plus ≤ 8 roundings of the update itself, 3 of the
   * decay term and one rounding of p per subtraction (two where weight decay applies). A wrong formula, order or constant breaks these by orders of
   * magnitude. Sizes cross chunk edges.
   */
  @Test
  void fusedFloatStepMatchesTheDoubleReferenceToItsRoundings() {
    int n = 3 * dev.peftspark.core.nn.NativeFloats.CHUNK + 1234;
    double lr = 3e-3, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    long t = 5;   // the step taken (state loaded at 4)
    java.util.SplittableRandom r = new java.util.SplittableRandom(7);
    float[] p = new float[n], g = new float[n], m = new float[n], v = new float[n], mask = new float[n];
    for (int i = 0; i < n; i++) {
      p[i] = (float) r.nextGaussian();
      g[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(-6, 1)));
      m[i] = (float) (r.nextGaussian() * 1e-2);
      v[i] = (float) (r.nextDouble() * 1e-4);
      mask[i] = r.nextBoolean() ? 1f : 0f;
    }
    AdamW fused = (AdamW) Optimizer.create("adamw", n, Nd4j.createFromArray(mask), wd, 0, b1, b2, eps);
    Optimizer ref = Optimizer.create("adamw", n, Nd4j.createFromArray(mask).castTo(DataType.DOUBLE), wd, 0, b1, b2, eps);
    INDArray mf = Nd4j.createFromArray(m), vf = Nd4j.createFromArray(v);
    fused.load(java.util.Map.of("adamw.m", mf, "adamw.v", vf, "adamw.t", Nd4j.scalar(t - 1)));
    ref.load(java.util.Map.of("adamw.m", mf.castTo(DataType.DOUBLE), "adamw.v", vf.castTo(DataType.DOUBLE), "adamw.t", Nd4j.scalar(t - 1)));
    INDArray pf = Nd4j.createFromArray(p), gf = Nd4j.createFromArray(g);
    INDArray pd = pf.castTo(DataType.DOUBLE), gd = gf.castTo(DataType.DOUBLE);
    assertTrue(fused.fusable(pf, gf), "flat FLOAT buffers take the fused loop");
    fused.step(pf, gf, lr);
    ref.step(pd, gd, lr);
    float[] pF = pf.toFloatVector(), mF = fused.state().get("adamw.m").toFloatVector(), vF = fused.state().get("adamw.v").toFloatVector();
    double[] pR = pd.toDoubleVector(), mR = ref.state().get("adamw.m").toDoubleVector(), vR = ref.state().get("adamw.v").toDoubleVector();
    double u = Math.pow(2, -24), invC2 = 1 / (1 - Math.pow(b2, t)), stepSize = lr / (1 - Math.pow(b1, t));
    double worstM = 0, worstV = 0, worstP = 0;   // errors as fractions of their bounds
    for (int i = 0; i < n; i++) {
      double errM = 4 * u * (Math.abs(m[i] * b1) + Math.abs(g[i] * (1 - b1)));
      double errV = 5 * u * (v[i] * b2 + (double) g[i] * g[i] * (1 - b2));
      double denom = Math.sqrt(vR[i] * invC2) + eps, update = stepSize * Math.abs(mR[i]) / denom;
      double errP = stepSize * errM / denom + update * errV / (2 * vR[i])
          + u * (8 * update + 3 * Math.abs(p[i] * mask[i] * lr * wd) + (1 + mask[i]) * Math.abs(pR[i]));
      worstM = Math.max(worstM, Math.abs(mF[i] - mR[i]) / errM);
      worstV = Math.max(worstV, Math.abs(vF[i] - vR[i]) / errV);
      worstP = Math.max(worstP, Math.abs(pF[i] - pR[i]) / errP);
    }
    assertTrue(worstM <= 1 && worstV <= 1 && worstP <= 1, "worst error / bound: m " + worstM + ", v " + worstV + ", p " + worstP);
    assertTrue(worstP > 0.01, "the float step does differ from the double one by roundings (" + worstP + ")");
    assertArrayEquals(g, gf.toFloatVector(), 0f, "the gradient is read, not written");
  }

  /**
   * Over several steps the float state drifts from the double one only by its roundings: parameters in [0, 1)
   * moved by ~lr per step stay below 2, where each step rounds p twice (decay, update) by at most half an ulp
   * (6e-8) and the update of ~lr (|m̂|/√v̂ ≤ ~1) by ~16u relative (1e-8): five steps, 6.4e-7.
   */
  @Test
  void fusedFloatStepsTrackTheDoubleReference() {
    int n = dev.peftspark.core.nn.NativeFloats.CHUNK + 77;
    java.util.SplittableRandom r = new java.util.SplittableRandom(11);
    INDArray mask = Nd4j.ones(DataType.FLOAT, n);
    Optimizer fused = Optimizer.create("adamw", n, mask, 0.01, 0, 0.9, 0.999, 1e-8);
    Optimizer ref = Optimizer.create("adamw", n, mask.castTo(DataType.DOUBLE), 0.01, 0, 0.9, 0.999, 1e-8);
    INDArray pf = Nd4j.rand(DataType.FLOAT, n), pd = pf.castTo(DataType.DOUBLE), p0 = pf.dup();
    for (int s = 0; s < 5; s++) {
      double[] g = new double[n];
      for (int i = 0; i < n; i++) g[i] = r.nextGaussian() * 1e-3;
      INDArray gd = Nd4j.createFromArray(g);
      fused.step(pf, gd.castTo(DataType.FLOAT), 1e-2);
      ref.step(pd, gd.castTo(DataType.FLOAT).castTo(DataType.DOUBLE), 1e-2);
    }
    double[] a = pf.toDoubleVector(), b = pd.toDoubleVector();
    double worst = 0;
    for (int i = 0; i < n; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assertTrue(worst <= 5 * (Math.ulp(1f) + 16 * Math.pow(2, -24) * 1e-2), "worst difference " + worst);
    assertTrue(pf.sub(p0).norm1Number().doubleValue() > 0.04 * n * 0.5, "the parameters moved (5 steps of ~lr each)");
  }

  @Test
  void sgdMomentumMatchesTorch() {
    INDArray p = vec(1.0), mask = vec(1.0);
    Optimizer opt = Optimizer.create("sgd", 1, mask, 0.0, 0.9, 0, 0, 0);
    opt.step(p, vec(1.0), 0.1);    // b = 1,           p = 1 - 0.1
    opt.step(p, vec(1.0), 0.1);    // b = 0.9 + 1,     p = 0.9 - 0.19
    assertEquals(0.71, p.getDouble(0), 1e-12);
  }

  @Test
  void stateRoundTripContinuesIdentically() {
    INDArray mask = vec(1, 1, 1);
    Optimizer a = Optimizer.create("adamw", 3, mask, 0.01, 0, 0.9, 0.999, 1e-8);
    INDArray pa = vec(1, 2, 3);
    a.step(pa, vec(0.1, -0.2, 0.3), 1e-2);
    Optimizer b = Optimizer.create("adamw", 3, mask, 0.01, 0, 0.9, 0.999, 1e-8);
    b.load(a.state());
    INDArray pb = pa.dup();
    a.step(pa, vec(0.3, 0.1, -0.1), 1e-2);
    b.step(pb, vec(0.3, 0.1, -0.1), 1e-2);
    assertEquals(pa, pb);
  }

  @Test
  void clipScalesToMaxNorm() {
    INDArray g = vec(3, 4);
    assertEquals(5.0, Optimizer.clipGlobalNorm(g, 1.0), 1e-12);
    assertEquals(1.0, g.norm2Number().doubleValue(), 1e-6);
  }

  @Test
  void schedules() {
    LrSchedule lin = LrSchedule.of(1.0, 0.1, 100, "linear");
    assertEquals(10, lin.warmupSteps());
    assertEquals(1.0 / 11, lin.at(0), 1e-12);
    assertEquals(1.0, lin.at(10), 1e-12);
    assertEquals(0.5, lin.at(55), 1e-12);
    LrSchedule cos = LrSchedule.of(2.0, 0.0, 10, "cosine");
    assertEquals(2.0, cos.at(0), 1e-12);
    assertEquals(1.0, cos.at(5), 1e-12);
    assertEquals(2.0, LrSchedule.of(2.0, 0, 10, "constant").at(9), 1e-12);
    assertThrows(IllegalArgumentException.class, () -> LrSchedule.of(1, 0, 10, "step"));
    assertThrows(IllegalArgumentException.class, () -> Optimizer.create("adam", 1, vec(1), 0, 0, 0, 0, 0));
  }
}
