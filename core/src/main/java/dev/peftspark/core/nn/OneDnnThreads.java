package dev.peftspark.core.nn;

import org.nd4j.nativeblas.NativeOps;
import org.nd4j.nativeblas.NativeOpsHolder;

/**
 * oneDNN's OpenMP team for one call: {@link Gemm} already runs one product per thread, so a oneDNN call must use a
 * team of one (its kernels would otherwise start as many OpenMP threads as cores, per calling thread). Loading ND4J
 * first puts ND4J's libgomp in the process before oneDNN's, so both share one runtime and one thread-count setting.
 */
final class OneDnnThreads {
  private static final NativeOps ND4J = loadNd4jFirst();

  private OneDnnThreads() {}

  private static NativeOps loadNd4jFirst() {
    Nd4jSetup.ensure();
    return NativeOpsHolder.getInstance().getDeviceNativeOps();
  }

  /** Sets this thread's OpenMP team size to one; returns the size before, for {@link #restore}. */
  static int single() {
    int before = ND4J.ompGetMaxThreads();
    if (before != 1) ND4J.setOmpNumThreads(1);
    return before;
  }

  /** Puts back the team size {@link #single} returned. */
  static void restore(int before) {
    if (before != 1) ND4J.setOmpNumThreads(before);
  }
}
