package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * One attention layer's keys and values of the tokens seen so far (batch 1), for decoding one token at a time:
 * {@code [kvHeads, capacity, hd]} buffers filled from the front, keys stored after the rotary embedding.
 */
public final class AttentionCache {
  private final INDArray keys, values;
  private int length;

  public AttentionCache(int kvHeads, int capacity, int headDim, DataType dtype) {
    if (capacity < 1) throw new IllegalArgumentException("cache capacity must be >= 1, got " + capacity);
    this.keys = Nd4j.create(dtype, kvHeads, capacity, headDim);
    this.values = Nd4j.create(dtype, kvHeads, capacity, headDim);
  }

  public int length() { return length; }
  public int capacity() { return (int) keys.size(1); }

  /** Appends {@code k, v [kvHeads, n, hd]}. */
  void append(INDArray k, INDArray v) {
    int n = (int) k.size(1);
    if (length + n > capacity())
      throw new IllegalStateException("attention cache full: " + length + " + " + n + " tokens exceed its capacity " + capacity());
    keys.get(NDArrayIndex.all(), NDArrayIndex.interval(length, length + n), NDArrayIndex.all()).assign(k);
    values.get(NDArrayIndex.all(), NDArrayIndex.interval(length, length + n), NDArrayIndex.all()).assign(v);
    length += n;
  }

  /** Keys so far, {@code [kvHeads, length, hd]} (contiguous copy). */
  INDArray keys() { return keys.get(NDArrayIndex.all(), NDArrayIndex.interval(0, length), NDArrayIndex.all()).dup('c'); }

  INDArray values() { return values.get(NDArrayIndex.all(), NDArrayIndex.interval(0, length), NDArrayIndex.all()).dup('c'); }
}
