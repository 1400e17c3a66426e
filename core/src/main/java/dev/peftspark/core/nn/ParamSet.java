package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The trainable parameters of a model packed into one flat value buffer and one flat gradient buffer (llm.c
 * style): each {@link Param} becomes a named view. Only these cross the network in distributed training.
 */
public final class ParamSet {
  private final INDArray values;   // [size]
  private final INDArray grads;    // [size]
  private final LinkedHashMap<String, Param> params = new LinkedHashMap<>();
  private final LinkedHashMap<String, long[]> ranges = new LinkedHashMap<>(); // name -> {offset, length}

  /** Packs the trainable params (in the given order) and rebinds each one's value/grad to views. */
  public ParamSet(List<Param> trainable, DataType dtype) {
    long size = 0;
    for (Param p : trainable) {
      if (!p.isTrainable()) throw new IllegalArgumentException(p.name + " is frozen");
      if (params.put(p.name, p) != null) throw new IllegalArgumentException("duplicate parameter " + p.name);
      ranges.put(p.name, new long[] {size, p.length()});
      size += p.length();
    }
    values = Nd4j.create(dtype, Math.max(size, 1));
    grads = Nd4j.create(dtype, Math.max(size, 1));
    for (Param p : trainable) {
      long off = ranges.get(p.name)[0];
      INDArray init = p.value;
      p.value = view(values, off, p.shape);
      p.grad = view(grads, off, p.shape);
      p.value.assign(init.castTo(dtype));
    }
  }

  private ParamSet(ParamSet shared, List<Param> trainable) {
    values = shared.values;
    grads = Nd4j.create(values.dataType(), values.length());
    List<String> names = shared.names();
    if (trainable.size() != names.size())
      throw new IllegalArgumentException("a replica has " + trainable.size() + " trainable tensors, the model " + names.size());
    for (int i = 0; i < trainable.size(); i++) {
      Param p = trainable.get(i), mine = shared.params.get(names.get(i));
      if (!p.name.equals(mine.name) || !java.util.Arrays.equals(p.shape, mine.shape))
        throw new IllegalArgumentException("replica tensor " + i + " is " + p + ", the model's is " + mine);
      long off = shared.ranges.get(p.name)[0];
      params.put(p.name, p);
      ranges.put(p.name, new long[] {off, p.length()});
      p.value = view(values, off, p.shape);
      p.grad = view(grads, off, p.shape);
    }
  }

  /**
   * A set over a replica's trainable params (same names, shapes and order as this set's): their values become views
   * of this set's value buffer (shared, nothing copied: an optimizer step here is seen by the replica), their
   * gradients views of a new buffer of the replica's own.
   */
  public ParamSet sharingValues(List<Param> trainable) { return new ParamSet(this, trainable); }

  private static INDArray view(INDArray flat, long offset, long[] shape) {
    long[] stride = new long[shape.length];
    long s = 1;
    for (int i = shape.length - 1; i >= 0; i--) { stride[i] = s; s *= shape[i]; }
    return Nd4j.create(flat.data(), shape, stride, offset, 'c', flat.dataType());
  }

  public INDArray values() { return values; }
  public INDArray grads() { return grads; }
  public long size() { return params.isEmpty() ? 0 : values.length(); }
  public Map<String, Param> params() { return Collections.unmodifiableMap(params); }
  public List<String> names() { return new ArrayList<>(params.keySet()); }
  public Param get(String name) { return params.get(name); }
  /** Clears the gradients: a parallel {@code memset} of the flat buffer (libnd4j's assign runs on one thread). */
  public void zeroGrad() { NativeFloats.zero(grads); }

  /** Offset and length of one parameter in the flat buffers. */
  public long[] range(String name) { return ranges.get(name).clone(); }
}
