package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Single-thread CPU time of the LLaMA bench's products: OpenBLAS sgemm, oneDNN sgemm and the bf16 GEMM (thread
 * CPU time, robust to other load). Run with
 * {@code mvn -q -o -pl core test -Dtest=Bf16GemmBench -Dpeft.bench=true -Dsurefire.failIfNoSpecifiedTests=false}
 * (AMX off: export DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 first; oneDNN reads it once).
 */
class Bf16GemmBench {
  private static final Logger log = LoggerFactory.getLogger(Bf16GemmBench.class);

  @Test
  void productsOfTheLlamaBench() {
    assumeTrue(Boolean.getBoolean("peft.bench"), "a benchmark: -Dpeft.bench=true");
    Nd4jSetup.ensure();
    int before = Nd4j.factory().blas().getMaxThreads();
    Nd4j.factory().blas().setMaxThreads(1);
    try {
      // m, n, k, transA, transB: x·Wᵀ (q/v, gate/up), down, head forward, head dX, attention scores, LoRA up,
      // a weight gradient, one attention block per head (scores, context, dV)
      int[][] shapes = {{512, 1376, 512, 0, 1}, {512, 512, 1376, 0, 1}, {510, 8000, 512, 0, 1}, {510, 512, 8000, 0, 0},
          {256, 256, 64, 0, 1}, {512, 512, 8, 0, 1}, {512, 512, 512, 1, 0}, {64, 256, 64, 0, 1}, {64, 64, 256, 0, 0},
          {256, 64, 64, 1, 0}};
      ThreadMXBean bean = ManagementFactory.getThreadMXBean();
      for (int[] s : shapes) {
        int m = s[0], n = s[1], k = s[2];
        boolean ta = s[3] == 1, tb = s[4] == 1;
        INDArray a = Nd4j.rand(DataType.FLOAT, ta ? k : m, ta ? m : k), b = Nd4j.rand(DataType.FLOAT, tb ? n : k, tb ? k : n);
        INDArray c = Nd4j.create(DataType.FLOAT, m, n);
        String[] names = {"openblas", "onednn", "bf16"};
        double[] ms = new double[names.length];
        for (int rep = 0; rep < 3; rep++) {
          for (int p = 0; p < names.length; p++) {
            Gemm.sgemm = p == 0 ? Gemm.Sgemm.OPENBLAS : Gemm.Sgemm.ONEDNN;
            Gemm.precision = p == 2 ? Gemm.Precision.BF16 : Gemm.Precision.FP32;
            int iters = (int) Math.max(10, 4e8 / (2.0 * m * n * k));   // ~0.4 GFLOP per figure
            long t0 = bean.getCurrentThreadCpuTime();
            for (int i = 0; i < iters; i++) Gemm.gemm(a, b, c, ta, tb, 1.0, 0.0);
            ms[p] = (bean.getCurrentThreadCpuTime() - t0) / 1e6 / iters;
          }
        }
        double gf = 2.0 * m * n * k / 1e6;
        StringBuilder line = new StringBuilder(m + "x" + n + "x" + k + " ta=" + ta + " tb=" + tb + ":");
        for (int p = 0; p < names.length; p++)
          line.append(String.format(" %s %.3f ms (%.0f GF/s)", names[p], ms[p], gf / ms[p]));
        log.info("{}", line);
      }
    } finally {
      Nd4j.factory().blas().setMaxThreads(before);
      Gemm.precision = Gemm.Precision.FP32;
      Gemm.sgemm = Gemm.Sgemm.of(System.getProperty("peft.gemm.sgemm", "onednn"));
    }
  }
}
