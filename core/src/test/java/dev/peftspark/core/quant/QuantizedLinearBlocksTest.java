package dev.peftspark.core.quant;

import dev.peftspark.core.nn.Param;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A quantized linear computed a block of rows at a time equals the whole-weight product (forward and input gradient). */
class QuantizedLinearBlocksTest {
  private static INDArray randn(SplittableRandom rng, DataType dtype, int... shape) {
    int n = 1;
    for (int s : shape) n *= s;
    double[] v = new double[n];
    for (int i = 0; i < n; i++) v[i] = rng.nextGaussian();
    return Nd4j.createFromArray(v).reshape(shape).castTo(dtype);
  }

  @ParameterizedTest
  @CsvSource({"DOUBLE, false, 1e-12", "DOUBLE, true, 1e-12", "FLOAT, true, 1e-5"})
  void blocksEqualTheWholeWeight(String type, boolean withBias, double tol) {
    DataType dtype = DataType.valueOf(type);
    int out = 37, in = 128;                                             // 128 = two NF4 blocks per row; 37 rows in 5 blocks of 8
    SplittableRandom rng = new SplittableRandom(3);
    float[] w = new float[out * in];
    for (int i = 0; i < w.length; i++) w[i] = (float) (0.05 * rng.nextGaussian());
    OffHeapNf4 q = OffHeapNf4.of(Nf4.quantize(w));
    Param bias = withBias ? Param.frozen("b", randn(rng, dtype, out)) : null;
    DequantBuffer scratch = new DequantBuffer(dtype);
    QuantizedLinear whole = new QuantizedLinear("whole", out, in, q, bias, scratch);
    QuantizedLinear blocks = new QuantizedLinear("blocks", out, in, q, bias, scratch, 8L * in);
    INDArray x = randn(rng, dtype, 6, in), dy = randn(rng, dtype, 6, out);
    INDArray expected = whole.forward(x), got = blocks.forward(x);
    assertEquals(0, expected.sub(got).amaxNumber().doubleValue(), tol * expected.amaxNumber().doubleValue(), "forward");
    INDArray dxExpected = whole.backward(dy, true), dx = blocks.backward(dy, true);
    assertEquals(0, dxExpected.sub(dx).amaxNumber().doubleValue(), tol * dxExpected.amaxNumber().doubleValue(), "input gradient");
    float[] back = new float[out * in];
    q.dequantize(back);
    INDArray wd = Nd4j.createFromArray(back).reshape(out, in).castTo(dtype);
    INDArray reference = x.mmul(wd.transpose());
    if (withBias) reference.addiRowVector(bias.value());
    assertEquals(0, reference.sub(got).amaxNumber().doubleValue(), tol * reference.amaxNumber().doubleValue(), "against x·Ŵᵀ + b");
  }
}
