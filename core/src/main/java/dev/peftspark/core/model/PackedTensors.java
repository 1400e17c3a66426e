package dev.peftspark.core.model;

import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.quant.OffHeapNf4;
import dev.peftspark.core.quant.QuantizedLinear;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.AbstractMap;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A frozen base in QLoRA's storage, named and laid out as the model holds it (GPT-2's Conv1D weights already
 * {@code [out, in]}): every layer linear's weight NF4-packed off the heap ({@link #nf4}), every other tensor
 * (embeddings, norms, biases, {@code lm_head}) in float as the map's entries. Models built on it
 * ({@link CausalLmConfig#build}, {@link BertEncoder#fromWeights}) share both read-only, each with its own dequantization scratch, so one copy
 * serves every model of a JVM.
 */
public final class PackedTensors extends AbstractMap<String, INDArray> {
  private final Map<String, INDArray> floats;
  private final Map<String, OffHeapNf4> nf4;

  private PackedTensors(Map<String, INDArray> floats, Map<String, OffHeapNf4> nf4) {
    this.floats = Collections.unmodifiableMap(floats);
    this.nf4 = Collections.unmodifiableMap(nf4);
  }

  /** The tensors of {@code model}, whose layer linears are {@link QuantizedLinear}s (its float tensors are shared, not copied). */
  static PackedTensors of(CausalLm model) { return of(model.params(), model.linears()); }

  /** {@code params} in float and {@code linears}' NF4 weights: a built model's tensors. */
  static PackedTensors of(List<Param> params, List<LinearLayer> linears) {
    Map<String, INDArray> floats = new LinkedHashMap<>();
    for (Param p : params) floats.put(p.name, p.value());
    Map<String, OffHeapNf4> packed = new LinkedHashMap<>();
    for (LinearLayer l : linears) {
      if (!(l instanceof QuantizedLinear q)) throw new IllegalStateException(l.name() + " is not quantized");
      packed.put(q.name() + ".weight", q.packedWeight());
    }
    return new PackedTensors(floats, packed);
  }

  /** The NF4 weight named {@code name} (e.g. {@code model.layers.0.mlp.up_proj.weight}), or null. */
  public OffHeapNf4 nf4(String name) { return nf4.get(name); }

  /**
   * The NF4 weight of layer linear {@code module} for a model being built on this base, checked to hold
   * {@code out × in} values; null when {@code module} is not NF4 here. An NF4 weight is frozen: {@code trainable}
   * (full fine-tuning) is refused.
   */
  public OffHeapNf4 linearWeight(String module, int out, int in, boolean trainable) {
    OffHeapNf4 w = nf4.get(module + ".weight");
    if (w == null) return null;
    if (trainable) throw new IllegalArgumentException(module + ": an NF4 base is frozen; full fine-tuning needs a float base");
    if (w.size() != (long) out * in)
      throw new IllegalArgumentException("tensor '" + module + ".weight' holds " + w.size() + " NF4 values, expected " + out + "x" + in);
    return w;
  }

  /** Every NF4 weight by name. */
  public Map<String, OffHeapNf4> nf4() { return nf4; }

  /** The float tensor {@code name}; null for an NF4 weight (see {@link #nf4(String)}). */
  @Override public INDArray get(Object name) { return floats.get(name); }

  @Override public boolean containsKey(Object name) { return floats.containsKey(name); }

  /** The float tensors only. */
  @Override public Set<Entry<String, INDArray>> entrySet() { return floats.entrySet(); }
}
