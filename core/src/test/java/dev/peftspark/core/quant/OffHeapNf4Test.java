package dev.peftspark.core.quant;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The native-memory NF4 codes decode bit for bit as the heap form does, through every path that reads them. */
class OffHeapNf4Test {
  /** Uneven scales per region so that absmaxes (and their double quantization) differ block to block. */
  private static float[] values(int n, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    float[] v = new float[n];
    for (int i = 0; i < n; i++) v[i] = (float) (rng.nextGaussian() * (0.01 + (i / 5000) % 7 * 0.03));
    return v;
  }

  /** Sizes: odd (a half-filled last byte), a partial last block, more than one chunk and one absmax block of 256. */
  @ParameterizedTest
  @ValueSource(ints = {1, 63, 64 * 256 + 1, OffHeapNf4.CHUNK * 2 + 777, 300_001})
  void decodesBitIdenticallyToTheHeapCodes(int n) {
    for (boolean doubleQuant : new boolean[] {true, false}) {
      Nf4Tensor heap = Nf4.quantize(values(n, n), doubleQuant);
      OffHeapNf4 off = OffHeapNf4.of(heap);
      float[] expected = new float[n], got = new float[n];
      Nf4.dequantize(heap, expected);
      off.dequantize(got);
      assertArrayEquals(expected, got, "n=" + n + " doubleQuant=" + doubleQuant);
      assertEquals(heap.storageBytes(), off.storageBytes());
      assertEquals(heap.blocks(), off.blocks());
      for (int b = 0; b < heap.blocks(); b++) assertEquals(heap.absmax(b), off.absmax(b), 0f);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"FLOAT", "DOUBLE"})
  void theScratchBufferHoldsTheSameValues(String type) {
    DataType dtype = DataType.valueOf(type);
    int rows = 300, cols = 450;                         // 135,000 values: three chunks, the last partial
    Nf4Tensor heap = Nf4.quantize(values(rows * cols, 9));
    float[] expected = new float[rows * cols];
    Nf4.dequantize(heap, expected);
    DequantBuffer scratch = new DequantBuffer(dtype);
    scratch.dequantize(OffHeapNf4.of(Nf4.quantize(values(rows * cols * 2, 3))), 2L * rows, cols);   // grow it first
    INDArray w = scratch.dequantize(OffHeapNf4.of(heap), rows, cols);
    assertArrayEquals(new long[] {rows, cols}, w.shape());
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < cols; j++) assertEquals(expected[i * cols + j], w.getDouble(i, j), 0.0, "at " + i + "," + j);
    }
  }

  @Test
  void aChunkMustStartABlock() {
    OffHeapNf4 off = OffHeapNf4.of(Nf4.quantize(values(200, 1)));
    assertThrows(IllegalArgumentException.class, () -> off.decodeChunk(10, new float[64]));
    assertThrows(IllegalArgumentException.class, () -> off.decodeChunk(256, new float[64]));
  }

  /** A range from a block inside the tensor, into an offset of the output; and the odd tail of an odd-sized tensor. */
  @Test
  void decodesARangeIntoAnOffset() {
    int n = 64 * 40 + 33;                                   // the last block partial and odd
    Nf4Tensor heap = Nf4.quantize(values(n, 4));
    OffHeapNf4 off = OffHeapNf4.of(heap);
    float[] all = new float[n];
    Nf4.dequantize(heap, all);
    float[] out = new float[n + 10];
    off.decode(128, 1000, out, 5, new byte[500]);
    for (int i = 0; i < 1000; i++) assertEquals(all[128 + i], out[5 + i], 0f, "value " + (128 + i));
    int from = 64 * 39, k = n - from;                       // 97 values: 48 pairs and a lone high nibble
    off.decode(from, k, out, 0, new byte[(k + 1) / 2]);
    for (int i = 0; i < k; i++) assertEquals(all[from + i], out[i], 0f, "tail value " + (from + i));
    assertThrows(IllegalArgumentException.class, () -> off.decode(64, n, out, 0, new byte[n]));   // past the end
    assertThrows(IllegalArgumentException.class, () -> off.decode(0, 100, out, 0, new byte[49]));  // staging too small
  }
}
