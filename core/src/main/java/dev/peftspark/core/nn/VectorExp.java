package dev.peftspark.core.nn;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code v[i] = e^v[i]} through the Vector API's {@code EXP}, which HotSpot on x86-64 runs as Intel's SVML routines
 * (libjsvml): within 1 ulp of {@code Math.exp}, IEEE limits (0 below, +∞ above, NaN for NaN), and about 4× less time
 * per value than {@link Floats}' polynomial (0.55-0.69 against 2.4-2.5 ns on this machine's AVX-512).
 * Loaded only when the JVM resolved {@code jdk.incubator.vector} ({@code --add-modules}, in conf/jvm.options).
 */
final class VectorExp {
  private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

  private VectorExp() {}

  static void exp(float[] v, int from, int to) {
    int i = from, lanes = SPECIES.length();
    for (; i + lanes <= to; i += lanes) FloatVector.fromArray(SPECIES, v, i).lanewise(VectorOperators.EXP).intoArray(v, i);
    if (i < to) {   // the tail as one masked vector: the same routine for every element
      var tail = SPECIES.indexInRange(i, to);
      FloatVector.fromArray(SPECIES, v, i, tail).lanewise(VectorOperators.EXP).intoArray(v, i, tail);
    }
  }
}
