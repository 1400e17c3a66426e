package dev.peftspark.core.peft;

import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.model.BertEncoder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Several named adapters on one base model, one of them active (PEFT's {@code load_adapter} / {@code set_adapter} /
 * {@code disable_adapter} / {@code delete_adapter}). Each adapter is a {@link PeftClassifier} built on the same base
 * tensors, which it uses in place (frozen tensors are never copied when {@code dtype} is theirs), so an adapter costs
 * only its own tensors. With adapters disabled the encoder is the plain base: hidden states are exactly the base
 * model's, and logits are the active adapter's head on them (a base encoder has no head of its own).
 */
public final class MultiAdapterModel {
  private final BertConfig config;
  private final Map<String, INDArray> base;
  private final DataType dtype;
  private final BertEncoder plain;
  private final LinkedHashMap<String, PeftClassifier> adapters = new LinkedHashMap<>();
  private String active;
  private boolean disabled;

  public MultiAdapterModel(BertConfig config, Map<String, INDArray> base, DataType dtype) {
    this.config = config;
    this.base = base;
    this.dtype = dtype;
    this.plain = BertEncoder.fromWeights(config, base, dtype, false);
  }

  /** Loads a saved adapter directory under {@code name}; the first one added becomes active. */
  public void load(String name, Path dir) throws IOException {
    add(name, AdapterFiles.load(dir, config, base, dtype));
  }

  /** Adds an adapter built on this model's base tensors (e.g. by {@link AdapterCombine}). */
  public void add(String name, PeftClassifier adapter) {
    if (name == null || name.isBlank()) throw new IllegalArgumentException("an adapter needs a name");
    if (adapters.containsKey(name)) throw new IllegalArgumentException("adapter '" + name + "' is already loaded; delete it first");
    adapter.setTraining(false);
    adapters.put(name, adapter);
    if (active == null) active = name;
  }

  public void setActive(String name) {
    require(name);
    active = name;
  }

  /** Deletes an adapter; deleting the active one leaves none active. */
  public void delete(String name) {
    require(name);
    adapters.remove(name);
    if (name.equals(active)) active = null;
  }

  /** Runs the plain base (every adapter off) until {@link #enableAdapters()}. */
  public void disableAdapters() { disabled = true; }

  public void enableAdapters() { disabled = false; }

  public boolean adaptersEnabled() { return !disabled; }

  public String active() { return active; }

  public List<String> names() { return new ArrayList<>(adapters.keySet()); }

  public PeftClassifier adapter(String name) { return require(name); }

  /** Last hidden states [B*T, H]: the active adapter's encoder, or the plain base when adapters are disabled. */
  public INDArray hidden(int[][] ids, int[][] mask) { return encoder().forward(ids, mask); }

  /** Mean-pooled, L2-normalised sentence embeddings [B, H]. */
  public INDArray embed(int[][] ids, int[][] mask) { return BertClassifier.embed(encoder(), ids, mask, dtype); }

  /** Logits [B, labels] of the active adapter's head on {@link #hidden}. */
  public INDArray logits(int[][] ids, int[][] mask) {
    BertClassifier m = activeModel().model();
    if (!disabled) return m.forward(ids, mask);
    return new BertClassifier(plain, m.pooling(), m.head(), dtype).forward(ids, mask);
  }

  private BertEncoder encoder() { return disabled ? plain : activeModel().model().encoder(); }

  private PeftClassifier activeModel() {
    if (active == null) {
      throw new IllegalStateException("no active adapter" + (adapters.isEmpty() ? " (none loaded)"
          : "; set one of " + adapters.keySet()));
    }
    return adapters.get(active);
  }

  private PeftClassifier require(String name) {
    PeftClassifier p = adapters.get(name);
    if (p == null) throw new IllegalArgumentException("no adapter named '" + name + "'; loaded: " + adapters.keySet());
    return p;
  }
}
