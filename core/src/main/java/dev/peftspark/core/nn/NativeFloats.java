package dev.peftspark.core.nn;

import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.FloatBuffer;

/**
 * Java loops straight over the native memory of contiguous FLOAT arrays (flat parameter, gradient and optimizer
 * buffers; activations a block of rows at a time), cut into chunks that {@link Parallel}'s threads share: no
 * {@code float[]} copy on the Java heap (at full fine-tuning's 20.8 M parameters one copy is 83 MB) and no chain of
 * single-threaded libnd4j passes.
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

  /**
   * One thread's share of {@link #streamRows}: block {@code b} ({@link #rowsPerBlock} whole rows, the last one
   * shorter) of every operand staged in {@link #in} and {@link #out}, each output with an array of its own.
   */
  public static final class RowBlocks {
    /** Staging arrays of the inputs and outputs, a block of rows each. */
    public final float[][] in, out;
    private final FloatBuffer[] src, dst;
    private final int rows, width, perBlock;

    private RowBlocks(FloatBuffer[] src, FloatBuffer[] dst, int rows, int width) {
      this.src = src;
      this.dst = dst;
      this.rows = rows;
      this.width = width;
      this.perBlock = rowsPerBlock(width);
      float[][] st = staging(src.length + dst.length, perBlock * width);
      in = java.util.Arrays.copyOfRange(st, 0, src.length);
      out = java.util.Arrays.copyOfRange(st, src.length, src.length + dst.length);
    }

    /** The index of block {@code b}'s first row. */
    public int first(int b) { return b * perBlock; }

    /** Copies block {@code b}'s rows of every input into {@link #in}; returns its count of rows. */
    public int load(int b) {
      int first = b * perBlock, n = Math.min(perBlock, rows - first);
      for (int i = 0; i < src.length; i++) src[i].get(first * width, in[i], 0, n * width);
      return n;
    }

    /** Copies the first {@code count} rows of each of {@link #out} into block {@code b} of its output. */
    public void store(int b, int count) {
      for (int j = 0; j < dst.length; j++) dst[j].put(b * perBlock * width, out[j], 0, count * width);
    }
  }

  /** The row blocks {@code [from, to)} of one thread, each loaded, computed and stored (as {@link BlockLoop}). */
  public interface RowLoop { void run(RowBlocks blocks, int from, int to); }

  /** Floats per staging array: a block of rows of every operand stays in L2 (in L1 at width 512 and two operands). */
  static final int STAGE = 1 << 12;
  private static final ThreadLocal<float[][]> STAGING = ThreadLocal.withInitial(() -> new float[0][]);

  /**
   * Row-wise kernels in single precision without [N, H] copies on the Java heap: blocks of whole rows of the
   * c-ordered FLOAT arrays {@code in} ({@code rows × width} each) are copied into small per-thread arrays, the
   * kernel writes the block of each {@code out} array, which is copied back; blocks are shared by {@link Parallel}'s
   * threads. An {@code out} array may be one of {@code in} (a block is read before it is written).
   */
  public static void streamRows(int rows, int width, INDArray[] in, INDArray[] out, RowLoop loop) {
    FloatBuffer[] src = new FloatBuffer[in.length], dst = new FloatBuffer[out.length];
    for (int i = 0; i < in.length; i++) src[i] = rowsOf(in[i], rows, width);
    for (int j = 0; j < out.length; j++) dst[j] = rowsOf(out[j], rows, width);
    int perBlock = rowsPerBlock(width), blocks = (rows + perBlock - 1) / perBlock;
    Parallel.forRange(blocks, (b0, b1) -> loop.run(new RowBlocks(src, dst, rows, width), b0, b1));
  }

  /**
   * Rows per block of {@link #streamRows} at {@code width}: fixed by the width alone, never by the threads, so
   * a kernel may keep one partial result per block ({@code first / rowsPerBlock}) and add them up in order.
   */
  public static int rowsPerBlock(int width) { return Math.max(1, STAGE / width); }

  /**
   * One thread's share of {@link #streamElements}: block {@code b} of every operand staged in {@link #in} and
   * {@link #out}. An output that is one of the inputs shares that input's staging array (the block is updated in
   * place: three fewer arrays in cache for AdamW), so a kernel reads value {@code i} of it before writing value
   * {@code i}.
   */
  public static final class Blocks {
    /** Staging arrays of the inputs and outputs, {@link #STAGE} values each. */
    public final float[][] in, out;
    private final INDArray[] inputs, outputs;
    private final long length;
    private final FloatBuffer[] src, dst;
    private int viewed = -1;                 // the chunk that src and dst view now

    private Blocks(INDArray[] inputs, INDArray[] outputs, long length) {
      this.inputs = inputs;
      this.outputs = outputs;
      this.length = length;
      float[][] st = staging(inputs.length + outputs.length, STAGE);
      in = java.util.Arrays.copyOfRange(st, 0, inputs.length);
      out = java.util.Arrays.copyOfRange(st, inputs.length, inputs.length + outputs.length);
      for (int j = 0; j < outputs.length; j++)
        for (int i = 0; i < inputs.length; i++) if (outputs[j] == inputs[i]) out[j] = in[i];
      src = new FloatBuffer[inputs.length];
      dst = new FloatBuffer[outputs.length];
    }

    /** Copies block {@code b} of every input into {@link #in}; returns its count of values. */
    public int load(int b) {
      long at = (long) b * STAGE;
      int c = (int) (at / CHUNK), off = (int) (at - (long) c * CHUNK), len = (int) Math.min(STAGE, length - at);
      if (c != viewed) {
        for (int i = 0; i < inputs.length; i++) src[i] = chunk(inputs[i], c);
        for (int j = 0; j < outputs.length; j++) dst[j] = chunk(outputs[j], c);
        viewed = c;
      }
      for (int i = 0; i < src.length; i++) src[i].get(off, in[i], 0, len);
      return len;
    }

    /** Copies the first {@code count} values of each of {@link #out} into block {@code b} of its output. */
    public void store(int b, int count) {
      int off = (int) ((long) b * STAGE % CHUNK);   // block b's chunk is the one load(b) viewed
      for (int j = 0; j < dst.length; j++) dst[j].put(off, out[j], 0, count);
    }
  }

  /**
   * The blocks {@code [from, to)} of one thread, each to be {@link Blocks#load loaded}, computed and
   * {@link Blocks#store stored}: the loop over blocks is the caller's own code, so that C2 compiles every kernel with its
   * loop on its own (one loop shared by all kernels was compiled with the first kernels inlined, then recompiled,
   * at ~40 KB and ~170 ms each, as new kernels came through it).
   */
  public interface BlockLoop { void run(Blocks blocks, int from, int to); }

  /**
   * Element-wise kernels in single precision over {@link #contiguous} arrays of one length (views at an offset
   * too, past 2^31 elements too): blocks of {@link #STAGE} values of every {@code in} array are copied into small
   * per-thread arrays, the kernel writes the block of each {@code out} array, which is copied back; blocks are
   * shared by {@link Parallel}'s threads and never cross a {@link #chunk}. Bulk copies into heap arrays because C2
   * vectorises loops over arrays, not over direct buffers; blocks small enough that the staging stays in L2
   * between the copies.
   */
  public static void streamElements(INDArray[] in, INDArray[] out, BlockLoop loop) {
    long length = out[0].length();
    for (INDArray a : concat(in, out))
      if (a.length() != length || length > 0 && !contiguous(a))   // no values (an empty batch): nothing to do
        throw new IllegalArgumentException("expected contiguous FLOAT arrays of " + length + " values, got " + a.dataType()
            + " " + java.util.Arrays.toString(a.shape()) + " order " + a.ordering() + " ews " + a.elementWiseStride());
    long blockCount = (length + STAGE - 1) / STAGE;
    if (blockCount > Integer.MAX_VALUE) throw new IllegalArgumentException("too many elements: " + length);
    if (blockCount == 0) return;
    Parallel.forRange((int) blockCount, (b0, b1) -> loop.run(new Blocks(in, out, length), b0, b1));
  }

  private static INDArray[] concat(INDArray[] a, INDArray[] b) {
    INDArray[] all = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, all, a.length, b.length);
    return all;
  }

  private static FloatBuffer rowsOf(INDArray a, int rows, int width) {
    if (a.dataType() != DataType.FLOAT || a.length() != (long) rows * width)
      throw new IllegalArgumentException("expected " + rows + " × " + width + " FLOAT values, got " + a.dataType() + " " + java.util.Arrays.toString(a.shape()));
    return values(a);
  }

  /** This thread's {@code count} staging arrays of at least {@code size} floats (grown, never shrunk). */
  private static float[][] staging(int count, int size) {
    float[][] st = STAGING.get();
    if (st.length < count || st[0].length < size) {
      int n = Math.max(count, st.length), len = Math.max(size, st.length == 0 ? 0 : st[0].length);
      st = new float[n][len];
      STAGING.set(st);
    }
    return st;
  }

  /**
   * {@code a += b} for two arrays of one shape, returned: a pass of plain Java loops over their native memory on
   * {@link Parallel}'s threads when both are {@link #contiguous} (the same float sums as ND4J's, without its op
   * object, random op id and single-threaded pass per call), ND4J's {@code addi} otherwise.
   */
  public static INDArray addInPlace(INDArray a, INDArray b) {
    if (!contiguous(a) || !contiguous(b) || !java.util.Arrays.equals(a.shape(), b.shape()))
      return a.addi(b);
    streamElements(new INDArray[] {a, b}, new INDArray[] {a}, (blocks, from, to) -> {
      float[] u = blocks.in[0], v = blocks.in[1], w = blocks.out[0];
      for (int k = from; k < to; k++) {
        int n = blocks.load(k);
        for (int i = 0; i < n; i++) w[i] = u[i] + v[i];
        blocks.store(k, n);
      }
    });
    return a;
  }
}
