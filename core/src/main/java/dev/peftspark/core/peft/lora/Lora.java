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
    Set<String> targets = select(names, cfg.targetModules());
    List<Param> added = new ArrayList<>();
    model.mapLinears(layer -> {
      if (!targets.contains(layer.name())) return layer;
      LinearLayer base = layer.base();
      Param a = Param.trainable(base.name() + ".lora_A.weight", initA(base, cfg, dtype, seed));
      Param b = Param.trainable(base.name() + ".lora_B.weight", Nd4j.zeros(dtype, base.outFeatures(), cfg.r()));
      added.add(a);
      added.add(b);
      Param m = null;
      if (cfg.useDora()) {   // m = ‖W + s·BA‖ per row, i.e. ‖W‖ while B is zero (PEFT's DoRA init)
        INDArray norms = LoraLinear.rowNorms(BaseWeight.weight(base), a.value(), b.value(), cfg.scaling());
        m = Param.trainable(base.name() + "." + MAGNITUDE, norms.reshape(base.outFeatures()).dup());
        added.add(m);
      }
      Dropout dropout = new Dropout(cfg.dropout(), seed ^ (base.name().hashCode() * 0x9E3779B97F4A7C15L));
      return new LoraLinear(base, a, b, m, cfg.scaling(), dropout);
    });
    return added;
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
  private static INDArray initA(LinearLayer base, LoraConfig cfg, DataType dtype, long seed) {
    int in = base.inFeatures(), r = cfg.r();
    SplittableRandom rng = new SplittableRandom(seed ^ base.name().hashCode());
    double[] v = new double[r * in];
    double bound = 1.0 / Math.sqrt(in);
    for (int i = 0; i < v.length; i++) {
      v[i] = cfg.initGaussian() ? gaussian(rng) / r : (rng.nextDouble() * 2 - 1) * bound;
    }
    return Nd4j.createFromArray(v).reshape(r, in).castTo(dtype);
  }

  static double gaussian(SplittableRandom rng) {
    double u1 = rng.nextDouble(), u2 = rng.nextDouble();
    return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
  }
}
