package dev.peftspark.core.io;

import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor entry of a safetensors header. {@code begin} and {@code end} are byte offsets relative to
 * the start of the data region, as in the file.
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {

  public TensorInfo {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dtype, "dtype");
    shape = shape.clone();
  }

  /** A copy of the shape (records expose arrays by reference otherwise). */
  @Override
  public long[] shape() { return shape.clone(); }

  public int rank() { return shape.length; }

  /** Product of the shape; 1 for a scalar. */
  public long numElements() { return elementCount(shape); }

  public long byteLength() { return end - begin; }

  static long elementCount(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype
        && Arrays.equals(shape, t.shape) && begin == t.begin && end == t.end;
  }

  @Override
  public int hashCode() { return Objects.hash(name, dtype, Arrays.hashCode(shape), begin, end); }

  @Override
  public String toString() {
    return name + " " + dtype.code() + Arrays.toString(shape) + " @[" + begin + ", " + end + ")";
  }
}
