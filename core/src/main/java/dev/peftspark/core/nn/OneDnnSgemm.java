package dev.peftspark.core.nn;

import dev.peftspark.core.nn.Gemm.Mat;

import static org.bytedeco.dnnl.global.dnnl.dnnl_sgemm;

/**
 * {@code c = alpha·op(a)·op(b) + beta·c} on FLOAT matrices by oneDNN's {@code dnnl_sgemm} (row-major, FP32
 * throughout, its JIT AVX-512/AVX2 kernels), single-threaded per call like every product {@link Gemm} splits over
 * threads. Inside the LLaMA bench's step: 70-81 GFLOP/s per thread against OpenBLAS 0.3.19's 58-68; one product
 * alone (Bf16GemmBench, thread CPU time): 94-122 against 89-106 on the projections, 64-97 against 52-89 on
 * attention's 64-wide blocks (BENCHMARKS.md, "FP32 products on oneDNN's sgemm").
 */
final class OneDnnSgemm {
  private OneDnnSgemm() {}

  /** The product on {@code m × k} by {@code k × n} (k ≥ 1); operands already checked by {@link Gemm#gemm}. */
  static void gemm(Mat a, boolean transA, Mat b, boolean transB, Mat c, int m, int n, int k, double alpha, double beta) {
    int omp = OneDnnThreads.single();
    try {
      int status = dnnl_sgemm((byte) (transA ? 'T' : 'N'), (byte) (transB ? 'T' : 'N'), m, n, k, (float) alpha,
          Gemm.floats(a), a.ld(), Gemm.floats(b), b.ld(), (float) beta, Gemm.floats(c), c.ld());
      if (status != 0)
        throw new IllegalStateException("dnnl_sgemm failed (status " + status + ") on " + m + "×" + n + "×" + k
            + ", lda " + a.ld() + ", ldb " + b.ld() + ", ldc " + c.ld());
    } finally {
      OneDnnThreads.restore(omp);
    }
  }
}
