package dev.peftspark.core.model;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.AbstractMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * Named tensors made when read and not kept (a random model's weights): a model built from it holds each tensor
 * only as long as it keeps it, so a quantized model never holds its full-precision weights all at once.
 */
final class GeneratedTensors extends AbstractMap<String, INDArray> {
  private final Map<String, Supplier<INDArray>> makers = new LinkedHashMap<>();

  void put(String name, Supplier<INDArray> maker) { makers.put(name, maker); }

  @Override
  public INDArray get(Object name) {
    Supplier<INDArray> m = makers.get(name);
    return m == null ? null : m.get();
  }

  @Override public boolean containsKey(Object name) { return makers.containsKey(name); }
  @Override public Set<String> keySet() { return makers.keySet(); }
  @Override public int size() { return makers.size(); }

  /** Generates every tensor (a full copy: for callers that want them all). */
  @Override
  public Set<Entry<String, INDArray>> entrySet() {
    return makers.entrySet().stream().map(e -> Map.entry(e.getKey(), e.getValue().get()))
        .collect(Collectors.toCollection(java.util.LinkedHashSet::new));
  }
}
