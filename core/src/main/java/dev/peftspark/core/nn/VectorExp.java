package dev.peftspark.core.nn;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Floats#expByPolynomial}'s operations, in the same order, on the Vector API's lanes: results bit for bit
 * equal to it, so a run repeats exactly whichever tier the JIT has reached (the API's own {@code EXP} is Intel's SVML
 * once C2 compiles it but {@code Math.exp} before, 1 ulp apart: reruns drifted). The float-to-int step that C2 leaves
 * scalar in plain Java is a lane reinterpretation here, so no copies through a direct buffer (~50 thread-ms less per
 * LLaMA bench step outside the products). Loaded only when the JVM resolved {@code jdk.incubator.vector}
 * ({@code --add-modules}, in conf/jvm.options).
 */
final class VectorExp {
  private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

  private VectorExp() {}

  static void exp(float[] v, int from, int to) {
    int i = from, lanes = SPECIES.length();
    for (; i + lanes <= to; i += lanes) exp(FloatVector.fromArray(SPECIES, v, i)).intoArray(v, i);
    if (i < to) {
      VectorMask<Float> tail = SPECIES.indexInRange(i, to);
      exp(FloatVector.fromArray(SPECIES, v, i, tail)).intoArray(v, i, tail);
    }
  }

  private static FloatVector exp(FloatVector x) {
    FloatVector c = x.min(Floats.EXP_HIGH).max(Floats.EXP_LOW);
    FloatVector ti = c.mul(Floats.LOG2E).add(Floats.ROUNDER);
    FloatVector n = ti.sub(Floats.ROUNDER);
    FloatVector r = c.sub(n.mul(Floats.LN2_HI)).add(n.mul(Floats.LN2_LO));
    FloatVector p = r.mul(Floats.P0).add(Floats.P1).mul(r).add(Floats.P2).mul(r).add(Floats.P3).mul(r)
        .add(Floats.P4).mul(r).add(Floats.P5).mul(r).mul(r).add(r).add(1f);
    IntVector bits = ti.reinterpretAsInts();
    FloatVector twoToN = bits.sub(Floats.ROUNDER_BITS_LESS_BIAS).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    return p.mul(twoToN);
  }
}
