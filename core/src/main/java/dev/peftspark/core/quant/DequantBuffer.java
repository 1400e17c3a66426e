package dev.peftspark.core.quant;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One full-precision scratch matrix shared by all {@link QuantizedLinear}s of a model: each forward and backward
 * dequantizes its weight into it just before the product, so no layer keeps a full-precision copy. Layers run one
 * at a time on one thread, which makes sharing safe; the buffer grows to the largest weight.
 */
public final class DequantBuffer {
  private final DataType dtype;
  private float[] floats = new float[0];   // Java-side staging for the decode loop
  private double[] doubles = new double[0];
  private INDArray flat;                   // native storage, reused

  public DequantBuffer(DataType dtype) {
    if (dtype != DataType.FLOAT && dtype != DataType.DOUBLE)
      throw new IllegalArgumentException("dequantization supports FLOAT and DOUBLE, got " + dtype);
    this.dtype = dtype;
  }

  public DataType dtype() { return dtype; }

  /** {@code t} dequantized as a [rows, cols] c-order view of the shared buffer, valid until the next call. */
  public INDArray dequantize(Nf4Tensor t, long rows, long cols) {
    int n = (int) t.size();
    if ((long) rows * cols != n) throw new IllegalArgumentException("a " + rows + "x" + cols + " view of " + n + " values");
    if (floats.length < n) floats = new float[n];
    if (flat == null || flat.length() < n) {
      // outside any workspace: a step workspace is recycled after the step, the scratch lives as long as the model
      try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
        flat = Nd4j.create(dtype, n);
      }
    }
    Nf4.dequantize(t, floats);
    if (dtype == DataType.FLOAT) {
      new FloatPointer(flat.data().addressPointer()).put(floats, 0, n);
    } else {
      if (doubles.length < n) doubles = new double[n];
      for (int i = 0; i < n; i++) doubles[i] = floats[i];
      new DoublePointer(flat.data().addressPointer()).put(doubles, 0, n);
    }
    return Nd4j.create(flat.data(), new long[] {rows, cols}, new long[] {cols, 1}, 0, 'c', dtype);
  }

  /** Bytes of the shared full-precision scratch (Java staging plus native buffer). */
  public long bytes() {
    return 4L * floats.length + 8L * doubles.length + (flat == null ? 0 : flat.length() * dtype.width());
  }
}
