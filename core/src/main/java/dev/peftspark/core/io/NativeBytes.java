package dev.peftspark.core.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.bytedeco.javacpp.BytePointer;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Windows onto an ND4J array's native memory, so tensors move between files and arrays with bulk
 * copies. A window is at most 2 GiB (a ByteBuffer limit); callers copy larger tensors in chunks.
 */
final class NativeBytes {
  /** Chunk size for copies: a multiple of every element width, well under 2 GiB. */
  static final int CHUNK = 1 << 30;

  private NativeBytes() {}

  /**
   * {@code length} bytes of {@code array}'s storage starting {@code offset} bytes in, little-endian.
   * The array must own its storage in c order (not a view); see {@link #contiguous}.
   */
  static ByteBuffer window(INDArray array, long offset, int length) {
    long total = array.length() * array.data().getElementSize();
    if (offset < 0 || length < 0 || offset + length > total) {
      throw new IndexOutOfBoundsException(
          "window [" + offset + ", " + (offset + length) + ") outside an array of " + total + " bytes");
    }
    BytePointer start = new BytePointer(array.data().addressPointer()).getPointer(offset);
    start.capacity(length).limit(length);
    return start.asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** {@code array} itself if its storage is exactly its c-order values, else a c-order copy. */
  static INDArray contiguous(INDArray array) {
    boolean exact = !array.isView() && array.ordering() == 'c' && array.data().offset() == 0
        && array.data().length() == array.length();
    return exact ? array : array.dup('c');
  }
}
