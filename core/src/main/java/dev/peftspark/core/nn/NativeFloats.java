package dev.peftspark.core.nn;

import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.FloatBuffer;

/**
 * Java loops straight over the native memory of contiguous FLOAT arrays (flat parameter, gradient and optimizer
 * buffers), cut into chunks that {@link Parallel}'s threads share: no {@code float[]} copy on the Java heap (at
 * full fine-tuning's 20.8 M parameters one copy is 83 MB) and no chain of single-threaded libnd4j passes.
 */
public final class NativeFloats {
  /** Elements per chunk: 1 MiB of floats, a few per thread on large buffers, each within NIO's int indices. */
  public static final int CHUNK = 1 << 18;

  private NativeFloats() {}

  /** True when {@code a} is FLOAT and its elements are one run of native memory in c order (any order when 1-D). */
  public static boolean contiguous(INDArray a) {
    return a.dataType() == DataType.FLOAT && (a.rank() <= 1 || a.ordering() == 'c') && a.elementWiseStride() == 1
        && a.length() > 0;
  }

  /** {@code a} itself when it is a whole c-ordered array, else a c-ordered copy. */
  public static INDArray cOrdered(INDArray a) {
    return a.isView() || a.ordering() != 'c' ? a.dup('c') : a;
  }

  /** A native-order view of a whole c-ordered FLOAT array's values, indexed from 0 (absolute gets and puts only). */
  public static FloatBuffer values(INDArray a) {
    if (a.isView() || a.ordering() != 'c')
      throw new IllegalArgumentException("expected a whole c-ordered array, got " + a.shapeInfoToString());
    return a.data().asNioFloat().position((int) a.offset()).slice();
  }

  /** Chunks of {@link #CHUNK} elements covering {@code length}. */
  public static int chunks(long length) {
    long n = (length + CHUNK - 1) / CHUNK;
    if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("too many elements: " + length);
    return (int) n;
  }

  /** Elements {@code [from, from + len)} of {@code a} ({@link #contiguous}) as a buffer over its memory (no copy). */
  public static FloatBuffer view(INDArray a, long from, int len) {
    if (!contiguous(a)) throw new IllegalArgumentException("expected a contiguous FLOAT array, got " + a.dataType()
        + " " + java.util.Arrays.toString(a.shape()) + " order " + a.ordering() + " ews " + a.elementWiseStride());
    if (from < 0 || len < 0 || from + len > a.length())
      throw new IllegalArgumentException("elements [" + from + ", " + (from + len) + ") outside an array of " + a.length());
    // addressPointer() is the array's first element (a view's buffer starts at the view), as Gemm uses it
    FloatPointer p = new FloatPointer(a.data().addressPointer());
    return p.position(from).limit(from + len).asBuffer();
  }

  /** Chunk {@code c} of {@code a}: elements {@code [c·CHUNK, min(length, (c+1)·CHUNK))}. */
  public static FloatBuffer chunk(INDArray a, int c) {
    long from = (long) c * CHUNK;
    return view(a, from, (int) Math.min(CHUNK, a.length() - from));
  }

  private static final float[] ZEROS = new float[CHUNK];

  /** Sets every element of {@code a} to 0: a bulk copy per chunk on Parallel's threads when contiguous FLOAT. */
  public static void zero(INDArray a) {
    if (!contiguous(a)) {
      a.assign(0);
      return;
    }
    Parallel.forEach(chunks(a.length()), c -> {
      FloatBuffer b = chunk(a, c);
      b.put(ZEROS, 0, b.limit());
    });
  }
}
