package dev.peftspark.core.quant;

import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * A quantized linear (direct GEMM on the dequantized blocks, decoded on two threads) against a plain {@link Linear}
 * holding the dequantized weight: forward, input gradient and bias gradient, whole and in row blocks, contiguous
 * and strided inputs; the input gradient also against finite differences.
 */
class QuantizedLinearTest {
  private int threadsBefore;

  @BeforeEach
  void twoThreads() {
    threadsBefore = Nd4j.factory().blas().getMaxThreads();
    Nd4j.factory().blas().setMaxThreads(2);   // Parallel's decoding and Gemm's split both run
  }

  @AfterEach
  void restore() { Nd4j.factory().blas().setMaxThreads(threadsBefore); }

  private static INDArray randn(SplittableRandom rng, DataType dtype, long... shape) {
    return GradCheck.randn(rng, shape).castTo(dtype);
  }

  private static float[] weights(int n, SplittableRandom rng) {
    float[] w = new float[n];
    for (int i = 0; i < n; i++) w[i] = (float) (0.05 * rng.nextGaussian() * (1 + (i / 700) % 3));   // uneven absmaxes
    return w;
  }

  private static double relErr(INDArray expected, INDArray got) {
    return expected.sub(got).amaxNumber().doubleValue() / expected.amaxNumber().doubleValue();
  }

  /** 1,000 rows × 192 in: 3 NF4 blocks a row; blocks of 100 rows (the last partial) or the whole weight at once. */
  @ParameterizedTest
  @CsvSource({"FLOAT, false, 19200, 1e-5", "FLOAT, true, 19200, 1e-5", "FLOAT, true, 0, 1e-5",
      "DOUBLE, true, 19200, 1e-12", "DOUBLE, false, 0, 1e-12"})
  void equalsALinearOnTheDequantizedWeight(String type, boolean withBias, long blockValues, double tol) {
    DataType dtype = DataType.valueOf(type);
    int out = 1000, in = 192, n = 7;
    SplittableRandom rng = new SplittableRandom(11);
    OffHeapNf4 q = OffHeapNf4.of(Nf4.quantize(weights(out * in, rng)));
    float[] back = new float[out * in];
    q.dequantize(back);
    INDArray wd = Nd4j.createFromArray(back).reshape(out, in).castTo(dtype);
    Param qBias = withBias ? Param.trainable("qb", randn(rng, dtype, out)) : null;
    Param lBias = withBias ? Param.trainable("lb", qBias.value().dup()) : null;
    if (withBias) new ParamSet(List.of(qBias, lBias), dtype).zeroGrad();   // gives both their gradients
    QuantizedLinear ql = new QuantizedLinear("q", out, in, q, qBias, new DequantBuffer(dtype), blockValues == 0 ? (long) out * in : blockValues);
    Linear ref = new Linear("ref", Param.frozen("w", wd), lBias);

    INDArray wide = randn(rng, dtype, n, in + 5);
    INDArray strided = wide.get(NDArrayIndex.all(), NDArrayIndex.interval(2, 2 + in));   // a view with row stride in + 5
    for (INDArray x : new INDArray[] {wide.get(NDArrayIndex.all(), NDArrayIndex.interval(2, 2 + in)).dup('c'), strided}) {
      INDArray expected = ref.forward(x), got = ql.forward(x);
      assertEquals(0, relErr(expected, got), tol, "forward");
      INDArray dyWide = randn(rng, dtype, n, out + 3), dy = dyWide.get(NDArrayIndex.all(), NDArrayIndex.interval(1, 1 + out));
      INDArray dxExpected = ref.backward(dy, true), dx = ql.backward(dy, true);
      assertEquals(0, relErr(dxExpected, dx), tol, "input gradient");
      if (withBias) assertEquals(0, relErr(lBias.grad(), qBias.grad()), tol, "bias gradient");
    }
  }

  @Test
  void inputGradientMatchesFiniteDifferences() {
    int out = 96, in = 128;
    SplittableRandom rng = new SplittableRandom(5);
    OffHeapNf4 q = OffHeapNf4.of(Nf4.quantize(weights(out * in, rng)));
    QuantizedLinear ql = new QuantizedLinear("q", out, in, q, Param.frozen("b", randn(rng, DataType.DOUBLE, out)),
        new DequantBuffer(DataType.DOUBLE), 32L * in);
    INDArray x = randn(rng, DataType.DOUBLE, 4, in), r = randn(rng, DataType.DOUBLE, 4, out);
    ql.forward(x);
    INDArray dx = ql.backward(r, true);
    GradCheck.check("quantized linear input", x, dx, () -> GradCheck.probe(ql.forward(x), r), 512);   // all 512 entries
  }

  @Test
  void aMismatchedInputTypeIsOneClearError() {
    OffHeapNf4 q = OffHeapNf4.of(Nf4.quantize(new float[64 * 4]));
    QuantizedLinear ql = new QuantizedLinear("model.layers.0.mlp.up_proj", 4, 64, q, null, new DequantBuffer(DataType.FLOAT));
    var e = assertThrows(IllegalArgumentException.class, () -> ql.forward(Nd4j.zeros(DataType.DOUBLE, 2, 64)));
    assertEquals("model.layers.0.mlp.up_proj: the input is DOUBLE, the layer computes in FLOAT", e.getMessage());
  }
}
