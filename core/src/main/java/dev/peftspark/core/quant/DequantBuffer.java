package dev.peftspark.core.quant;

import dev.peftspark.core.nn.Parallel;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;

/**
 * One full-precision scratch matrix shared by all {@link QuantizedLinear}s of a model: each forward and backward
 * dequantizes its weight into it just before the product, so no layer keeps a full-precision copy. Layers run one
 * at a time on one thread, which makes sharing safe; the buffer grows to the largest weight. Values are decoded a
 * chunk at a time straight into the native buffer (no heap copy of the whole weight), the chunks spread over
 * {@link Parallel}'s threads.
 */
public final class DequantBuffer {
  private final DataType dtype;
  /** One thread's staging of a chunk: its codes, its values, and (DOUBLE) the values widened. */
  private static final class Staging {
    final byte[] codes = new byte[OffHeapNf4.CHUNK / 2];
    final float[] values = new float[OffHeapNf4.CHUNK];
    private double[] wide;   // DOUBLE only

    double[] wide() { return wide != null ? wide : (wide = new double[OffHeapNf4.CHUNK]); }
  }

  private static final ThreadLocal<Staging> STAGING = ThreadLocal.withInitial(Staging::new);
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
    FloatBuffer floats = dtype == DataType.FLOAT ? flat.data().asNioFloat() : null;
    DoubleBuffer doubles = floats == null ? flat.data().asNioDouble() : null;
    int chunks = (int) ((n + OffHeapNf4.CHUNK - 1) / OffHeapNf4.CHUNK);
    // chunks decoded on Parallel's threads, each with its own staging, written with absolute puts (disjoint ranges)
    Parallel.forRange(chunks, (c0, c1) -> {
      Staging st = STAGING.get();
      for (int c = c0; c < c1; c++) {
        long at = (long) c * OffHeapNf4.CHUNK;
        int k = (int) Math.min(OffHeapNf4.CHUNK, n - at);
        t.decode(start + at, k, st.values, 0, st.codes);
        if (floats != null) {
          floats.put((int) at, st.values, 0, k);
        } else {
          double[] wide = st.wide();
          for (int j = 0; j < k; j++) wide[j] = st.values[j];
          doubles.put((int) at, wide, 0, k);
        }
      }
    });
    return Nd4j.create(flat.data(), new long[] {to - from, cols}, new long[] {cols, 1}, 0, 'c', dtype);
  }

  /** Bytes of the shared full-precision scratch (the native buffer; each decoding thread adds 288 KiB of staging). */
  public long bytes() {
    return (flat == null ? 0 : flat.length() * dtype.width());
  }
}
