package dev.peftspark.core.model;

import dev.peftspark.core.io.HalfFloats;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.quant.DequantBuffer;
import dev.peftspark.core.quant.HalfLinear;
import dev.peftspark.core.quant.OffHeapNf4;
import dev.peftspark.core.quant.QuantizedLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;

/**
 * Builds {@link Param}s from tensors named as in a Hugging Face checkpoint: checks each shape, casts to the compute
 * type, says which names exist when one is missing, and records every base parameter it made (the state dict).
 */
final class HfWeights {
  private final Map<String, INDArray> weights;
  private final DataType dtype;
  private final boolean trainable;
  private final List<Param> made = new ArrayList<>();
  private final UnaryOperator<LinearLayer> layerLinears;
  private DequantBuffer scratch;   // shared by the linears built on a PackedTensors

  HfWeights(Map<String, INDArray> weights, DataType dtype, boolean trainable) {
    this(weights, dtype, trainable, UnaryOperator.identity());
  }

  /** @param layerLinears applied to each layer's linear as soon as it is built (e.g. quantization) */
  HfWeights(Map<String, INDArray> weights, DataType dtype, boolean trainable, UnaryOperator<LinearLayer> layerLinears) {
    this.weights = weights;
    this.dtype = dtype;
    this.trainable = trainable;
    this.layerLinears = layerLinears;
  }

  List<Param> made() { return List.copyOf(made); }

  Param param(String name, long... shape) {
    INDArray v = value(name, shape);
    Param p = trainable ? Param.trainable(name, v) : Param.frozen(name, v);
    made.add(p);
    return p;
  }

  /** The tensor {@code name} in the compute type (itself when it has it). */
  private INDArray value(String name, long... shape) {
    INDArray t = check(name, shape);
    return t.dataType() == dtype ? t : t.castTo(dtype);
  }

  /** The tensor {@code name}, which must exist with {@code shape}. */
  private INDArray check(String name, long... shape) {
    INDArray t = weights.get(name);
    if (t == null) {
      throw new IllegalArgumentException("base model has no tensor '" + name + "'; it has " + weights.size()
          + " tensors, the closest being " + weights.keySet().stream()
          .sorted(Comparator.comparingInt((String k) -> -commonPrefix(k, name)).thenComparing(k -> k))
          .limit(5).toList());
    }
    if (!Arrays.equals(t.shape(), shape)) {
      throw new IllegalArgumentException("tensor '" + name + "' has shape " + Arrays.toString(t.shape())
          + ", expected " + Arrays.toString(shape));
    }
    return t;
  }

  /**
   * An embedding-sized matrix stored as {@code storage} (16 bits: frozen, see {@link HalfLinear}) rather than the
   * compute type; a tensor this map generated on demand is freed as soon as it is narrowed.
   */
  Param table(String name, DataType storage, long rows, long cols) {
    if (storage == dtype) return param(name, rows, cols);
    if (trainable) throw new IllegalArgumentException(name + ": a trainable model keeps its tables in " + dtype + ", not " + storage);
    INDArray t = check(name, rows, cols);
    INDArray v = t.dataType() == storage ? t : t.castTo(storage);
    if (v != t && weights instanceof GeneratedTensors) t.close();
    Param p = Param.frozen(name, v);
    made.add(p);
    return p;
  }

  private static int commonPrefix(String a, String b) {
    int n = 0;
    while (n < a.length() && n < b.length() && a.charAt(n) == b.charAt(n)) n++;
    return n;
  }

  Linear linear(String module, int out, int in, boolean bias) {
    return new Linear(module, param(module + ".weight", out, in), bias ? param(module + ".bias", out) : null);
  }

  /**
   * A transformer layer's linear passed through {@code layerLinears}; when that replaces it (quantization), its
   * full-precision tensors are forgotten here, so nothing keeps them alive (they leave the state dict).
   */
  LinearLayer layerLinear(String module, int out, int in, boolean bias) {
    OffHeapNf4 nf4 = weights instanceof PackedTensors packed ? packed.linearWeight(module, out, in, trainable) : null;
    if (nf4 != null) return quantized(nf4, module, out, in, bias);
    Linear plain = linear(module, out, in, bias);
    LinearLayer made = layerLinears.apply(plain);
    if (made != plain) this.made.removeAll(plain.params());
    return made;
  }

  /**
   * A layer linear on a PackedTensors' shared NF4 weight {@code w}, as {@link #layerLinear} makes it after quantizing: the
   * bias is a frozen float {@link Param} and neither tensor enters the state dict.
   */
  private QuantizedLinear quantized(OffHeapNf4 w, String module, int out, int in, boolean bias) {
    if (scratch == null) scratch = new DequantBuffer(dtype);   // one per model, as Qlora.quantizeBase makes
    Param b = bias ? Param.frozen(module + ".bias", value(module + ".bias", out)) : null;
    return new QuantizedLinear(module, out, in, w, b, scratch);
  }

  /** N(0, std²) from a generator seeded by {@code seed} and the tensor's name, so each tensor is independent of order. */
  static INDArray normal(String name, long seed, double std, DataType dtype, long... shape) {
    long n = Arrays.stream(shape).reduce(1, (a, b) -> a * b);
    if (n > Integer.MAX_VALUE - 8) throw new IllegalArgumentException(name + ": " + n + " elements exceed one Java array");
    SplittableRandom rng = new SplittableRandom(seed ^ (name.hashCode() * 0x9E3779B97F4A7C15L));
    boolean wide = dtype == DataType.DOUBLE;
    if (HalfLinear.isHalf(dtype)) return normalHalf(rng, std, n, dtype, shape);
    if (!wide) {
      INDArray f = normalFloats(rng, std, n, shape);
      return dtype == DataType.FLOAT ? f : f.castTo(dtype);
    }
    double[] d = new double[(int) n];
    for (int i = 0; i < n; i += 2) {
      double u1 = rng.nextDouble(), u2 = rng.nextDouble();
      double r = std * Math.sqrt(-2 * Math.log(1 - u1));
      d[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) d[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    INDArray out = Nd4j.createFromArray(d).reshape(shape);
    return out.dataType() == dtype ? out : out.castTo(dtype);
  }

  /**
   * The same Box-Muller sequence in single precision, written straight into native memory a slice at a time: a
   * large random model never holds a tensor on the JVM heap as well (its heap can stay small).
   */
  private static INDArray normalFloats(SplittableRandom rng, double std, long n, long... shape) {
    INDArray out = Nd4j.createUninitialized(DataType.FLOAT, shape, 'c');
    java.nio.FloatBuffer buf = out.data().asNioFloat();
    buf.position((int) out.offset());
    normalSlices(rng, std, n, (slice, len) -> buf.put(slice, 0, len));
    return out;
  }

  /**
   * The same sequence rounded to 16 bits (nearest even) a slice at a time: a large 16-bit table never exists in
   * float as a whole.
   */
  private static INDArray normalHalf(SplittableRandom rng, double std, long n, DataType dtype, long... shape) {
    INDArray out = Nd4j.createUninitialized(dtype, shape, 'c');
    java.nio.ShortBuffer buf = out.data().asNio().order(java.nio.ByteOrder.nativeOrder()).asShortBuffer();
    boolean bf16 = dtype == DataType.BFLOAT16;
    normalSlices(rng, std, n, (slice, len) -> {
      for (int k = 0; k < len; k++) buf.put(bf16 ? HalfFloats.floatToBf16(slice[k]) : HalfFloats.floatToF16(slice[k]));
    });
    return out;
  }

  private interface Slices {
    void accept(float[] slice, int len);
  }

  /** Box-Muller N(0, std²) floats, {@code n} in all, handed out 64 Ki at a time. */
  private static void normalSlices(SplittableRandom rng, double std, long n, Slices sink) {
    float[] slice = new float[1 << 16];
    for (long i = 0; i < n; ) {
      int len = (int) Math.min(slice.length, n - i);
      for (int k = 0; k < len; k += 2) {
        double u1 = rng.nextDouble(), u2 = rng.nextDouble();
        double r = std * Math.sqrt(-2 * Math.log(1 - u1));
        slice[k] = (float) (r * Math.cos(2 * Math.PI * u2));
        if (k + 1 < len) slice[k + 1] = (float) (r * Math.sin(2 * Math.PI * u2));
      }
      sink.accept(slice, len);
      i += len;
    }
  }
}
