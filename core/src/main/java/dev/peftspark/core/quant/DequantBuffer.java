package dev.peftspark.core.quant;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;

/**
 * One full-precision scratch matrix shared by all {@link QuantizedLinear}s of a model: each forward and backward
 * dequantizes its weight into it just before the product, so no layer keeps a full-precision copy. Layers run one
 * at a time on one thread, which makes sharing safe; the buffer grows to the largest weight. Values are decoded a
 * chunk at a time straight into the native buffer (no heap copy of the whole weight).
 */
public final class DequantBuffer {
  private final DataType dtype;
  private final float[] chunk = new float[OffHeapNf4.CHUNK];   // Java-side staging of one chunk
  private final double[] wide = new double[OffHeapNf4.CHUNK];
  private INDArray flat;                                          // native storage, reused

  public DequantBuffer(DataType dtype) {
    if (dtype != DataType.FLOAT && dtype != DataType.DOUBLE)
      throw new IllegalArgumentException("dequantization supports FLOAT and DOUBLE, got " + dtype);
    this.dtype = dtype;
  }

  public DataType dtype() { return dtype; }

  /** {@code t} dequantized as a [rows, cols] c-order view of the shared buffer, valid until the next call. */
  public INDArray dequantize(OffHeapNf4 t, long rows, long cols) {
    if (rows * cols != t.size()) throw new IllegalArgumentException("a " + rows + "x" + cols + " view of " + t.size() + " values");
    return dequantizeRows(t, 0, rows, cols);
  }

  /**
   * Rows {@code from..to} of {@code t} seen as {@code [*, cols]}, as a [to - from, cols] view of the shared buffer
   * (valid until the next call); {@code from · cols} must start an NF4 block.
   */
  public INDArray dequantizeRows(OffHeapNf4 t, long from, long to, long cols) {
    long n = (to - from) * cols, start = from * cols;
    if (from < 0 || to <= from || to * cols > t.size())
      throw new IllegalArgumentException("rows " + from + ".." + to + " of " + cols + " outside " + t.size() + " values");
    if (flat == null || flat.length() < n) {
      if (flat != null) flat.close();
      // outside any workspace: a step workspace is recycled after the step, the scratch lives as long as the model
      try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
        flat = Nd4j.create(dtype, n);
      }
    }
    if (dtype == DataType.FLOAT) {
      FloatBuffer out = flat.data().asNioFloat();
      for (long i = 0; i < n; ) {
        int k = t.decodeChunk(start + i, chunk, (int) Math.min(chunk.length, n - i));
        out.put(chunk, 0, k);
        i += k;
      }
    } else {
      DoubleBuffer out = flat.data().asNioDouble();
      for (long i = 0; i < n; ) {
        int k = t.decodeChunk(start + i, chunk, (int) Math.min(chunk.length, n - i));
        for (int j = 0; j < k; j++) wide[j] = chunk[j];
        out.put(wide, 0, k);
        i += k;
      }
    }
    return Nd4j.create(flat.data(), new long[] {to - from, cols}, new long[] {cols, 1}, 0, 'c', dtype);
  }

  /** Bytes of the shared full-precision scratch (native buffer plus the chunk staging). */
  public long bytes() {
    return 12L * chunk.length + (flat == null ? 0 : flat.length() * dtype.width());
  }
}
