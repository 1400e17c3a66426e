package dev.peftspark.core.io;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Objects;

/**
 * A tensor as bytes, for {@link SafeTensors#write(java.nio.file.Path, java.util.List, java.util.Map)}: {@code data}'s remaining bytes are the
 * little-endian c-order values and must number {@code dtype.bytes() × product(shape)}. The buffer's
 * position is not changed by writing.
 */
public record RawTensor(String name, DType dtype, long[] shape, ByteBuffer data) {

  public RawTensor {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dtype, "dtype");
    Objects.requireNonNull(data, "data");
    shape = shape.clone();
  }

  @Override
  public long[] shape() { return shape.clone(); }

  @Override
  public String toString() {
    return "RawTensor[" + name + " " + dtype.code() + Arrays.toString(shape) + ", " + data.remaining()
        + " bytes]";
  }
}
