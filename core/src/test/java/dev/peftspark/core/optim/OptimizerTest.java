package dev.peftspark.core.optim;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

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
