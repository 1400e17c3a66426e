package dev.peftspark.core.quant;

import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.Param;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A 16-bit linear against a full-precision {@link Linear} holding the same rounded weight, with blocks of rows that
 * span several decode chunks (and a partial last block): only the order of sums may differ.
 */
class HalfLinearTest {
  private static INDArray randn(SplittableRandom rng, int rows, int cols) {
    double[] v = new double[rows * cols];
    for (int i = 0; i < v.length; i++) v[i] = rng.nextGaussian();
    return Nd4j.createFromArray(v).reshape(rows, cols);
  }

  @ParameterizedTest
  @CsvSource({"BFLOAT16, DOUBLE, 1e-12", "HALF, DOUBLE, 1e-12", "BFLOAT16, FLOAT, 1e-5", "HALF, FLOAT, 1e-5"})
  void equalsTheLinearOnTheRoundedWeight(String half, String compute, double tol) {
    DataType h = DataType.valueOf(half), dtype = DataType.valueOf(compute);
    SplittableRandom rng = new SplittableRandom(7);
    INDArray w16 = randn(rng, 301, 128).muli(0.1).castTo(h);            // 38,528 values; blocks of 130 rows: 16,640 each
    HalfLinear small = new HalfLinear("head", Param.frozen("head.weight", w16), 130);
    Linear full = new Linear("head", Param.frozen("head.weight", w16.castTo(dtype)), null);
    INDArray x = randn(rng, 5, 128).castTo(dtype), dy = randn(rng, 5, 301).castTo(dtype);
    INDArray expected = full.forward(x), got = small.forward(x);
    assertEquals(dtype, got.dataType());
    assertEquals(0, expected.sub(got).amaxNumber().doubleValue(), tol * expected.amaxNumber().doubleValue(), "forward");
    INDArray dxExpected = full.backward(dy, true), dx = small.backward(dy, true);
    assertEquals(0, dxExpected.sub(dx).amaxNumber().doubleValue(), tol * dxExpected.amaxNumber().doubleValue(), "input gradient");
  }

  /** Views with a row stride as inputs, the widening and the products spread over two threads. */
  @Test
  void stridedInputsOnTwoThreads() {
    int before = Nd4j.factory().blas().getMaxThreads();
    Nd4j.factory().blas().setMaxThreads(2);
    try {
      SplittableRandom rng = new SplittableRandom(8);
      INDArray w16 = randn(rng, 700, 192).muli(0.1).castTo(DataType.BFLOAT16);   // blocks of 300 rows: 57,600 values, 4 chunks
      HalfLinear small = new HalfLinear("head", Param.frozen("head.weight", w16), 300);
      Linear full = new Linear("head", Param.frozen("head.weight", w16.castTo(DataType.FLOAT)), null);
      INDArray x = randn(rng, 6, 200).castTo(DataType.FLOAT).get(NDArrayIndex.all(), NDArrayIndex.interval(3, 195));
      INDArray dy = randn(rng, 6, 710).castTo(DataType.FLOAT).get(NDArrayIndex.all(), NDArrayIndex.interval(10, 710));
      INDArray expected = full.forward(x.dup('c')), got = small.forward(x);
      assertEquals(0, expected.sub(got).amaxNumber().doubleValue(), 1e-5 * expected.amaxNumber().doubleValue(), "forward");
      INDArray dxExpected = full.backward(dy.dup('c'), true), dx = small.backward(dy, true);
      assertEquals(0, dxExpected.sub(dx).amaxNumber().doubleValue(), 1e-5 * dxExpected.amaxNumber().doubleValue(), "input gradient");
    } finally {
      Nd4j.factory().blas().setMaxThreads(before);
    }
  }
}
