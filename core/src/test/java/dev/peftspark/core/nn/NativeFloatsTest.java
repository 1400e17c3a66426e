package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.FloatBuffer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Native views of flat FLOAT buffers: the right elements (views at an offset too), in place, nothing outside. */
class NativeFloatsTest {
  private static INDArray ramp(int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) v[i] = i + 1;
    return Nd4j.createFromArray(v);
  }

  @Test
  void chunksCoverAViewAtAnOffsetAndWriteInPlace() {
    int n = 2 * NativeFloats.CHUNK + 5, off = 3;
    INDArray whole = ramp(n + off + 4);
    INDArray view = whole.get(NDArrayIndex.interval(off, off + n));   // a contiguous view, offset 3 into `whole`
    assertTrue(NativeFloats.contiguous(view), view.shapeInfoToString() + " ews " + view.elementWiseStride());
    assertEquals(3, NativeFloats.chunks(n));
    long seen = 0;
    for (int c = 0; c < NativeFloats.chunks(n); c++) {
      FloatBuffer b = NativeFloats.chunk(view, c);
      assertEquals(c < 2 ? NativeFloats.CHUNK : 5, b.limit());
      for (int i = 0; i < b.limit(); i++) {
        assertEquals(off + seen + 1, b.get(i), "element " + seen);
        b.put(i, -b.get(i));
        seen++;
      }
    }
    assertEquals(n, seen);
    float[] w = whole.toFloatVector();
    for (int i = 0; i < w.length; i++) assertEquals(i >= off && i < off + n ? -(i + 1) : i + 1, w[i], "whole[" + i + "]");
  }

  /**
   * Rows in blocks on two threads, a block of rows that does not divide the count, one output written over an
   * input: every row's kernel sees its own row and index, and every output row lands where it belongs.
   */
  @Test
  void streamRowsGivesEachRowItsIndexAndWritesEveryOutput() {
    int width = 1000, rows = 3 * (NativeFloats.STAGE / width) + 2;   // 4 rows per block: 14 rows, the last block 2
    INDArray a = Nd4j.rand(DataType.FLOAT, rows, width), b = Nd4j.rand(DataType.FLOAT, rows, width);
    float[] a0 = a.dup().data().asFloat(), b0 = b.data().asFloat();
    INDArray sum = Nd4j.createUninitialized(DataType.FLOAT, new long[] {rows, width}, 'c');
    int before = Nd4j.factory().blas().getMaxThreads();
    Nd4j.factory().blas().setMaxThreads(2);
    try {
      NativeFloats.streamRows(rows, width, new INDArray[] {a, b}, new INDArray[] {sum, a}, (blocks, from, to) -> {
        float[][] in = blocks.in, out = blocks.out;
        for (int blk = from; blk < to; blk++) {
          int n = blocks.load(blk), first = blocks.first(blk);
          for (int i = 0; i < n * width; i++) {
            out[0][i] = in[0][i] + in[1][i];
            out[1][i] = first + i / width;      // the row's index, over its input
          }
          blocks.store(blk, n);
        }
      });
    } finally {
      Nd4j.factory().blas().setMaxThreads(before);
    }
    float[] s = sum.data().asFloat(), idx = a.data().asFloat();
    for (int i = 0; i < rows * width; i++) {
      assertEquals(a0[i] + b0[i], s[i], "sum[" + i + "]");
      assertEquals(i / width, idx[i], "row of element " + i);
    }
    assertThrows(IllegalArgumentException.class, () -> NativeFloats.streamRows(rows, width + 1, new INDArray[] {a}, new INDArray[0], (blocks, from, to) -> {}));
  }

  /**
   * Blocks of values over views at an offset, across chunk boundaries, on two threads, one output written over
   * its input: every value is seen once, every output lands where it belongs and nothing outside the views moves.
   */
  @Test
  void streamElementsCoversViewsAcrossChunks() {
    int n = 2 * NativeFloats.CHUNK + 3 * NativeFloats.STAGE + 5, off = 3;
    INDArray whole = ramp(n + off + 4), view = whole.get(NDArrayIndex.interval(off, off + n));
    INDArray other = Nd4j.rand(DataType.FLOAT, n), sum = Nd4j.createUninitialized(DataType.FLOAT, n);
    float[] o = other.toFloatVector();
    int before = Nd4j.factory().blas().getMaxThreads();
    Nd4j.factory().blas().setMaxThreads(2);
    try {
      NativeFloats.streamElements(new INDArray[] {view, other}, new INDArray[] {sum, view}, (blocks, from, to) -> {
        float[][] in = blocks.in, out = blocks.out;
        for (int b = from; b < to; b++) {
          int k = blocks.load(b);
          for (int i = 0; i < k; i++) {
            out[0][i] = in[0][i] + in[1][i];
            out[1][i] = -in[0][i];
          }
          blocks.store(b, k);
        }
      });
    } finally {
      Nd4j.factory().blas().setMaxThreads(before);
    }
    float[] w = whole.toFloatVector(), s = sum.toFloatVector();
    for (int i = 0; i < n; i++) assertEquals(off + i + 1 + o[i], s[i], "sum[" + i + "]");
    for (int i = 0; i < w.length; i++) assertEquals(i >= off && i < off + n ? -(i + 1) : i + 1, w[i], "whole[" + i + "]");
    assertThrows(IllegalArgumentException.class, () -> NativeFloats.streamElements(new INDArray[] {other}, new INDArray[] {ramp(n - 1)}, (blocks, from, to) -> {}));
    INDArray empty = Nd4j.create(DataType.FLOAT, 0, 8);      // an empty batch: the kernel is not called
    NativeFloats.streamElements(new INDArray[] {empty}, new INDArray[] {empty}, (blocks, from, to) -> { throw new AssertionError("called"); });
    INDArray column = Nd4j.create(DataType.FLOAT, 4, 3).get(NDArrayIndex.all(), NDArrayIndex.point(1));
    assertThrows(IllegalArgumentException.class, () -> NativeFloats.streamElements(new INDArray[] {column}, new INDArray[] {ramp(4)}, (blocks, from, to) -> {}));
  }

  /** The same float sums as ND4J's addi, over several blocks on two threads; strided views and doubles go to ND4J. */
  @Test
  void addInPlaceGivesNd4jsSums() {
    int n = 5 * NativeFloats.STAGE + 7;
    INDArray a = Nd4j.rand(DataType.FLOAT, 3, n), b = Nd4j.rand(DataType.FLOAT, 3, n).subi(0.5);
    float[] expected = a.dup().addi(b).data().asFloat();
    int before = Nd4j.factory().blas().getMaxThreads();
    Nd4j.factory().blas().setMaxThreads(2);
    try {
      assertSame(a, NativeFloats.addInPlace(a, b));
    } finally {
      Nd4j.factory().blas().setMaxThreads(before);
    }
    assertArrayEquals(expected, a.data().asFloat());
    INDArray whole = Nd4j.rand(DataType.FLOAT, 4, 6), row = whole.getRow(1), other = Nd4j.ones(DataType.FLOAT, 6);
    float[] w0 = whole.data().asFloat();
    NativeFloats.addInPlace(row, other);                       // a contiguous view: only that row changes
    float[] w = whole.data().asFloat();
    for (int i = 0; i < w.length; i++) assertEquals(i / 6 == 1 ? w0[i] + 1 : w0[i], w[i], "element " + i);
    INDArray m = Nd4j.rand(DataType.FLOAT, 4, 6);
    float[] m0 = m.data().asFloat();
    NativeFloats.addInPlace(m.getColumn(2), Nd4j.ones(DataType.FLOAT, 4));   // strided: ND4J's addi
    float[] m1 = m.data().asFloat();
    for (int i = 0; i < m1.length; i++) assertEquals(i % 6 == 2 ? m0[i] + 1 : m0[i], m1[i], "m[" + i + "]");
    INDArray d = Nd4j.ones(DataType.DOUBLE, 5);
    assertArrayEquals(new double[] {2, 2, 2, 2, 2}, NativeFloats.addInPlace(d, Nd4j.ones(DataType.DOUBLE, 5)).toDoubleVector());
  }

  @Test
  void zeroClearsOnlyTheView() {
    int n = NativeFloats.CHUNK + 9, off = 2;
    INDArray whole = ramp(n + off + 3);
    NativeFloats.zero(whole.get(NDArrayIndex.interval(off, off + n)));
    float[] w = whole.toFloatVector();
    for (int i = 0; i < w.length; i++) assertEquals(i >= off && i < off + n ? 0f : i + 1, w[i], "whole[" + i + "]");
    INDArray d = Nd4j.ones(DataType.DOUBLE, 5);    // other types: ND4J's assign
    NativeFloats.zero(d);
    assertArrayEquals(new double[5], d.toDoubleVector());
  }

  @Test
  void rejectsWhatIsNotOneRunOfFloats() {
    INDArray m = Nd4j.create(DataType.FLOAT, 4, 3);
    INDArray column = m.get(NDArrayIndex.all(), NDArrayIndex.point(1));
    assertFalse(NativeFloats.contiguous(column));
    assertFalse(NativeFloats.contiguous(Nd4j.create(DataType.DOUBLE, 3)));
    assertThrows(IllegalArgumentException.class, () -> NativeFloats.view(column, 0, 1));
    assertThrows(IllegalArgumentException.class, () -> NativeFloats.view(m, 10, 3));
  }
}
