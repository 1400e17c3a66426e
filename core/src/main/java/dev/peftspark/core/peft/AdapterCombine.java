package dev.peftspark.core.peft;

import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.lora.LoraLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * PEFT's {@code add_weighted_adapter} for LoRA adapters on one base: a new adapter whose lora_alpha equals its rank
 * (scaling 1), over the union of the adapters' target modules.
 * <ul>
 *   <li>{@code linear}: equal ranks; {@code A = Σ √(wᵢsᵢ)·Aᵢ}, {@code B = Σ √(wᵢsᵢ)·Bᵢ} (so cross terms appear
 *       unless one adapter is given, exactly as in PEFT)</li>
 *   <li>{@code cat}: rank = Σ rᵢ; A stacks {@code wᵢsᵢ·Aᵢ} on dim 0, B stacks Bᵢ on dim 1: {@code BA = Σ wᵢsᵢBᵢAᵢ}</li>
 *   <li>{@code svd}: the truncated SVD of {@code Σ wᵢsᵢBᵢAᵢ}: {@code A = Vhᵀ[:r]}, {@code B = U[:, :r]·diag(S[:r])}</li>
 * </ul>
 * PEFT refuses adapters that each bring a classification head (modules_to_save); here the new adapter takes the
 * head of the first one listed.
 */
public final class AdapterCombine {
  private AdapterCombine() {}

  public enum Type {
    LINEAR, CAT, SVD;

    public static Type parse(String s) {
      for (Type t : values()) if (t.name().equalsIgnoreCase(s)) return t;
      throw new IllegalArgumentException("combination type must be linear, cat or svd, got '" + s + "'");
    }
  }

  /** One input adapter and its weight. */
  public record Weighted(String name, PeftClassifier adapter, double weight) {}

  /**
   * @param svdRank the rank for {@code svd} (0: the largest rank among the adapters, PEFT's default); ignored otherwise
   */
  public static PeftClassifier combine(List<Weighted> adapters, Type type, int svdRank, BertConfig cfg,
                                       Map<String, INDArray> base, DataType dtype) {
    if (adapters.isEmpty()) throw new IllegalArgumentException("combine needs at least one adapter");
    List<Map<String, LoraLinear>> layers = new ArrayList<>();
    for (Weighted w : adapters) layers.add(loraLayers(w));
    Set<String> modules = new LinkedHashSet<>();
    for (LinearLayer l : adapters.get(0).adapter().model().encoder().linears()) {
      for (Map<String, LoraLinear> m : layers) if (m.containsKey(l.name())) modules.add(l.name());
    }
    int rank = switch (type) {
      case LINEAR -> commonRank(adapters, layers);
      case CAT -> adapters.stream().mapToInt(w -> w.adapter().lora().r()).sum();
      case SVD -> svdRank > 0 ? svdRank : adapters.stream().mapToInt(w -> w.adapter().lora().r()).max().orElseThrow();
    };
    PeftClassifier first = adapters.get(0).adapter();
    LoraConfig out = first.lora().withRank(rank, rank, List.copyOf(modules));
    PeftClassifier result = PeftClassifier.create(Method.LORA, out, cfg, base, first.model().numLabels(),
        first.model().pooling(), dtype, 0);
    for (LoraLinear target : result.loraLayers()) {
      INDArray[] ab = switch (type) {
        case LINEAR -> linear(adapters, layers, target.name());
        case CAT -> cat(adapters, layers, target, rank);
        case SVD -> svd(adapters, layers, target, rank);
      };
      target.loraA().value().assign(ab[0]);
      target.loraB().value().assign(ab[1]);
    }
    result.model().head().weight().value().assign(first.model().head().weight().value());
    result.model().head().bias().value().assign(first.model().head().bias().value());
    return result;
  }

  private static Map<String, LoraLinear> loraLayers(Weighted w) {
    PeftClassifier p = w.adapter();
    if (p.method() != Method.LORA || p.lora() == null) {
      throw new IllegalArgumentException("adapter '" + w.name() + "' is a " + p.method().key()
          + " adapter; combine works on LoRA adapters (as PEFT's add_weighted_adapter)");
    }
    if (p.lora().useDora()) throw new IllegalArgumentException("adapter '" + w.name() + "' uses DoRA, which combine does not support (nor does PEFT)");
    if (!p.lora().bias().equals("none"))
      throw new IllegalArgumentException("adapter '" + w.name() + "' trains biases (lora.bias " + p.lora().bias()
          + "); biases belong to the base and cannot be weighted per adapter");
    if (!Double.isFinite(w.weight())) throw new IllegalArgumentException("adapter '" + w.name() + "': weight must be finite");
    Map<String, LoraLinear> out = new LinkedHashMap<>();
    for (LoraLinear l : p.loraLayers()) out.put(l.name(), l);
    return out;
  }

  private static int commonRank(List<Weighted> adapters, List<Map<String, LoraLinear>> layers) {
    Set<Long> ranks = new LinkedHashSet<>();
    for (Map<String, LoraLinear> m : layers) for (LoraLinear l : m.values()) ranks.add(l.loraA().shape[0]);
    if (ranks.size() != 1) {
      throw new IllegalArgumentException("combination type linear needs adapters of one rank, got ranks " + ranks
          + " (adapters " + adapters.stream().map(Weighted::name).toList() + "); use cat or svd");
    }
    for (Weighted w : adapters) {
      if (w.weight() < 0) throw new IllegalArgumentException("combination type linear takes √weight, so adapter '"
          + w.name() + "' needs a weight ≥ 0, got " + w.weight() + "; use cat or svd for negative weights");
    }
    return ranks.iterator().next().intValue();
  }

  private static INDArray[] linear(List<Weighted> adapters, List<Map<String, LoraLinear>> layers, String module) {
    INDArray a = null, b = null;
    for (int i = 0; i < adapters.size(); i++) {
      LoraLinear l = layers.get(i).get(module);
      if (l == null) continue;
      double f = Math.sqrt(adapters.get(i).weight() * l.scaling());
      a = a == null ? l.loraA().value().mul(f) : a.addi(l.loraA().value().mul(f));
      b = b == null ? l.loraB().value().mul(f) : b.addi(l.loraB().value().mul(f));
    }
    return new INDArray[] {a, b};
  }

  private static INDArray[] cat(List<Weighted> adapters, List<Map<String, LoraLinear>> layers, LoraLinear target, int rank) {
    INDArray a = Nd4j.zeros(target.loraA().value().dataType(), rank, target.inFeatures());
    INDArray b = Nd4j.zeros(target.loraB().value().dataType(), target.outFeatures(), rank);
    int at = 0;
    for (int i = 0; i < adapters.size(); i++) {
      LoraLinear l = layers.get(i).get(target.name());
      if (l == null) continue;   // PEFT packs the adapters that target the module first and leaves zeros after
      int r = (int) l.loraA().shape[0];
      a.get(NDArrayIndex.interval(at, at + r), NDArrayIndex.all()).assign(l.loraA().value().mul(adapters.get(i).weight() * l.scaling()));
      b.get(NDArrayIndex.all(), NDArrayIndex.interval(at, at + r)).assign(l.loraB().value());
      at += r;
    }
    return new INDArray[] {a, b};
  }

  private static INDArray[] svd(List<Weighted> adapters, List<Map<String, LoraLinear>> layers, LoraLinear target, int rank) {
    int out = target.outFeatures(), in = target.inFeatures();
    if (rank > Math.min(out, in)) {
      throw new IllegalArgumentException("svd rank " + rank + " exceeds min(out, in) = " + Math.min(out, in)
          + " of " + target.name());
    }
    INDArray delta = weightedDelta(adapters, layers, target.name(), out, in);
    int k = Math.min(out, in);
    INDArray sv = Nd4j.create(DataType.DOUBLE, k), u = Nd4j.create(DataType.DOUBLE, new long[] {out, out}, 'f');
    INDArray vt = Nd4j.create(DataType.DOUBLE, new long[] {in, in}, 'f');
    Nd4j.getBlasWrapper().lapack().gesvd(delta.dup('f'), sv, u, vt);                 // LAPACK: S descending
    INDArray s = sv.get(NDArrayIndex.interval(0, rank));
    INDArray b = u.get(NDArrayIndex.all(), NDArrayIndex.interval(0, rank)).mulRowVector(s.reshape(1, rank));
    INDArray a = vt.get(NDArrayIndex.interval(0, rank), NDArrayIndex.all());
    DataType dt = target.loraA().value().dataType();
    return new INDArray[] {a.castTo(dt), b.castTo(dt)};
  }

  /** {@code Σ wᵢ·sᵢ·BᵢAᵢ} in double precision ([out, in]). */
  public static INDArray weightedDelta(List<Weighted> adapters, List<Map<String, LoraLinear>> layers, String module,
                                       int out, int in) {
    INDArray delta = Nd4j.zeros(DataType.DOUBLE, out, in);
    for (int i = 0; i < adapters.size(); i++) {
      LoraLinear l = layers.get(i).get(module);
      if (l == null) continue;
      INDArray b = l.loraB().value().castTo(DataType.DOUBLE), a = l.loraA().value().castTo(DataType.DOUBLE);
      Nd4j.gemm(b, a, delta, false, false, adapters.get(i).weight() * l.scaling(), 1.0);
    }
    return delta;
  }

  /** The same, from the adapters alone: what a test or caller compares a combined adapter's {@code s·BA} with. */
  public static INDArray weightedDelta(List<Weighted> adapters, String module) {
    List<Map<String, LoraLinear>> layers = new ArrayList<>();
    LoraLinear any = null;
    for (Weighted w : adapters) {
      Map<String, LoraLinear> m = loraLayers(w);
      layers.add(m);
      if (any == null) any = m.get(module);
    }
    if (any == null) throw new IllegalArgumentException("no adapter targets " + module);
    return weightedDelta(adapters, layers, module, any.outFeatures(), any.inFeatures());
  }
}
