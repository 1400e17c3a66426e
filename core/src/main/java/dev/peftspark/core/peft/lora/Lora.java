package dev.peftspark.core.peft.lora;

import dev.peftspark.core.nn.Dropout;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.LinearModules;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.regex.Pattern;

/** Injects LoRA into the linear modules that {@link LoraConfig#targetModules()} selects (PEFT's matching rules). */
public final class Lora {
  private Lora() {}

  public static final String ALL_LINEAR = "all-linear";
  /** DoRA's per-row magnitude, saved as {@code <module>.lora_magnitude_vector} ([out]), as PEFT saves it. */
  public static final String MAGNITUDE = "lora_magnitude_vector";

  /** Wraps the targeted linears of {@code model} in {@link LoraLinear}s; returns the new trainable params. */
  public static List<Param> inject(LinearModules model, LoraConfig cfg, DataType dtype, long seed) {
    List<String> names = model.linears().stream().map(LinearLayer::name).toList();
    Set<String> targets = targets(names, cfg);
    List<Param> added = new ArrayList<>();
    model.mapLinears(layer -> {
      if (!targets.contains(layer.name())) return layer;
      LinearLayer base = layer.base();
      int r = cfg.rank(base.name());
      double scaling = cfg.scaling(base.name());
      Param a = Param.trainable(base.name() + ".lora_A.weight", initA(base, r, cfg.initGaussian(), dtype, seed));
      Param b = Param.trainable(base.name() + ".lora_B.weight", Nd4j.zeros(dtype, base.outFeatures(), r));
      added.add(a);
      added.add(b);
      Param m = null;
      if (cfg.useDora()) {   // m = ‖W + s·BA‖ per row, i.e. ‖W‖ while B is zero (PEFT's DoRA init)
        INDArray norms = LoraLinear.rowNorms(BaseWeight.weight(base), a.value(), b.value(), scaling);
        m = Param.trainable(base.name() + "." + MAGNITUDE, norms.reshape(base.outFeatures()).dup());
        added.add(m);
      }
      Dropout dropout = new Dropout(cfg.dropout(), seed ^ (base.name().hashCode() * 0x9E3779B97F4A7C15L));
      return new LoraLinear(base, a, b, m, scaling, dropout);
    });
    return added;
  }

  /**
   * The modules LoRA adapts: {@link #select} on target_modules, then (for a list of names, as PEFT does) only those
   * in layers_to_transform, the layer index being the number in {@code <x>.<N>.} of the name.
   */
  public static Set<String> targets(List<String> moduleNames, LoraConfig cfg) {
    Set<String> chosen = select(moduleNames, cfg.targetModules());
    boolean regex = cfg.targetModules().size() == 1 && isRegex(cfg.targetModules().get(0));
    if (cfg.layersToTransform().isEmpty() || regex) return chosen;
    Set<String> kept = new LinkedHashSet<>();
    for (String n : chosen) {
      Integer layer = layerIndex(n);
      if (layer != null && cfg.layersToTransform().contains(layer)) kept.add(n);
    }
    if (kept.isEmpty()) {
      Set<Integer> layers = new TreeSet<>();
      for (String n : chosen) if (layerIndex(n) != null) layers.add(layerIndex(n));
      throw new IllegalArgumentException("lora.layers_to_transform " + cfg.layersToTransform()
          + " selects none of the targeted modules; the model's layers are " + layers);
    }
    return kept;
  }

  private static final Pattern LAYER = Pattern.compile(".*\\.[^.]*\\.(\\d+)\\.");

  /** PEFT's layer index: {@code re.match(r".*\.[^.]*\.(\d+)\.", name)}, or null. */
  static Integer layerIndex(String module) {
    var m = LAYER.matcher(module);
    return m.lookingAt() ? Integer.valueOf(m.group(1)) : null;
  }

  /** PEFT's target selection; every requested target must match something, else the error lists what exists. */
  public static Set<String> select(List<String> moduleNames, List<String> targetModules) {
    Set<String> chosen = new LinkedHashSet<>();
    if (targetModules.size() == 1 && targetModules.get(0).equals(ALL_LINEAR)) {
      chosen.addAll(moduleNames);   // the model's linears; a classification or LM head is never among them
      return chosen;
    }
    if (targetModules.size() == 1 && isRegex(targetModules.get(0))) {
      Pattern p = Pattern.compile(targetModules.get(0));
      for (String n : moduleNames) if (p.matcher(n).matches()) chosen.add(n);
      if (chosen.isEmpty()) throw noMatch("regular expression '" + targetModules.get(0) + "'", moduleNames);
      return chosen;
    }
    for (String t : targetModules) {
      boolean hit = false;
      for (String n : moduleNames) {
        if (n.equals(t) || n.endsWith("." + t)) { chosen.add(n); hit = true; }
      }
      if (!hit) throw noMatch("'" + t + "'", moduleNames);
    }
    return chosen;
  }

  /** The per-layer prefix of BERT, LLaMA and GPT-2 module names. */
  private static final Pattern LAYER_PREFIX = Pattern.compile("^(encoder\\.layer|model\\.layers|transformer\\.h)\\.\\d+\\.");

  private static boolean isRegex(String s) {
    for (char c : s.toCharArray()) if ("*+?[]()|^$\\".indexOf(c) >= 0) return true;
    return false;
  }

  private static IllegalArgumentException noMatch(String what, List<String> moduleNames) {
    Set<String> shortNames = new TreeSet<>();
    String layer = "";
    for (String n : moduleNames) {
      var m = LAYER_PREFIX.matcher(n);
      if (m.find()) layer = m.group(1) + ".N";
      shortNames.add(m.replaceFirst(""));
    }
    return new IllegalArgumentException("lora.target_modules: " + what + " matches no module of the model; "
        + "linear modules are " + String.join(", ", shortNames) + (layer.isEmpty() ? "" : " (in every " + layer + ")")
        + ", or use 'all-linear'");
  }

  /** kaiming_uniform_(a=√5) on [r, in] is U(-1/√in, 1/√in); "gaussian" is N(0, 1/r) (std 1/r, as PEFT does). */
  private static INDArray initA(LinearLayer base, int r, boolean gaussian, DataType dtype, long seed) {
    int in = base.inFeatures();
    SplittableRandom rng = new SplittableRandom(seed ^ base.name().hashCode());
    double[] v = new double[r * in];
    double bound = 1.0 / Math.sqrt(in);
    for (int i = 0; i < v.length; i++) {
      v[i] = gaussian ? gaussian(rng) / r : (rng.nextDouble() * 2 - 1) * bound;
    }
    return Nd4j.createFromArray(v).reshape(r, in).castTo(dtype);
  }

  static double gaussian(SplittableRandom rng) {
    double u1 = rng.nextDouble(), u2 = rng.nextDouble();
    return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
  }
}
