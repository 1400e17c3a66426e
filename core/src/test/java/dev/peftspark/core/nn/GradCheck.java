package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Central finite differences in double precision against analytic gradients. */
public final class GradCheck {
  public static final double EPS = 1e-6;
  public static final double TOL = 1e-6;   // max relative error; a wrong term in a backward gives O(1)

  static {
    Nd4jSetup.ensure();
  }

  private GradCheck() {}

  public static INDArray randn(SplittableRandom rng, long... shape) {
    long n = 1;
    for (long s : shape) n *= s;
    double[] v = new double[(int) n];
    for (int i = 0; i < v.length; i++) {
      double u1 = rng.nextDouble(), u2 = rng.nextDouble();
      v[i] = Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }
    return Nd4j.createFromArray(v).reshape(shape);
  }

  /** Checks every entry (or up to {@code maxEntries} random ones) of {@code x} against {@code analytic}. */
  public static void check(String what, INDArray x, INDArray analytic, DoubleSupplier loss, int maxEntries) {
    assertTrue(x.dataType() == DataType.DOUBLE, "gradient checks run in double precision");
    INDArray flat = x.reshape(x.length());          // a view for contiguous arrays
    INDArray g = analytic.dup().reshape(x.length());
    SplittableRandom pick = new SplittableRandom(7);
    long n = x.length();
    int count = (int) Math.min(n, maxEntries);
    double worst = 0;
    double scale = Math.max(1e-2, g.amaxNumber().doubleValue());   // floor: FD round-off is ~1e-9 here
    for (int k = 0; k < count; k++) {
      long i = n <= maxEntries ? k : pick.nextLong(n);
      double orig = flat.getDouble(i);
      flat.putScalar(i, orig + EPS);
      double lp = loss.getAsDouble();
      flat.putScalar(i, orig - EPS);
      double lm = loss.getAsDouble();
      flat.putScalar(i, orig);
      double numeric = (lp - lm) / (2 * EPS);
      double err = Math.abs(numeric - g.getDouble(i)) / scale;
      worst = Math.max(worst, err);
      if (err > TOL) {
        fail(what + "[" + i + "]: analytic " + g.getDouble(i) + " vs numeric " + numeric + " (relative error " + err + ")");
      }
    }
    assertTrue(worst <= TOL);
  }

  /** Loss = sum(R ∘ y) for a fixed random R, so dL/dy = R: a probe for any layer's backward. */
  public static double probe(INDArray y, INDArray r) { return y.mul(r).sumNumber().doubleValue(); }

  public static void checkParams(String what, List<Param> params, DoubleSupplier loss, int maxEntries) {
    for (Param p : params) {
      if (p.isTrainable()) check(what + " " + p.name, p.value(), p.grad(), loss, maxEntries);
    }
  }

  /** Makes dropout masks repeat across the forwards of a check. */
  public static void freeze(Dropout d) { d.reuseMask(true); }
}
