package dev.peftspark.core.peft.ia3;

import dev.peftspark.core.nn.LinearModules;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.peft.lora.Lora;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Injects IA3 vectors (initialised to ones) into the linears {@link Ia3Config#targetModules()} selects. */
public final class Ia3 {
  private Ia3() {}

  public static final String KEY = "ia3_l";

  /** Wraps the targeted linears of {@code encoder} (any model: BERT, LLaMA, GPT-2) in {@link Ia3Linear}s; returns the new trainable params. */
  public static List<Param> inject(LinearModules encoder, Ia3Config cfg, DataType dtype) {
    List<String> names = encoder.linears().stream().map(LinearLayer::name).toList();
    Set<String> targets;
    try {
      targets = Lora.select(names, cfg.targetModules());
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(e.getMessage().replace("lora.target_modules", "ia3.target_modules"));
    }
    for (String ff : cfg.feedforwardModules()) {
      if (targets.stream().noneMatch(t -> cfg.isFeedforward(t) && (Ia3Config.isRegex(ff) || t.endsWith(ff))))
        throw new IllegalArgumentException("ia3.feedforward_modules: '" + ff + "' matches none of the targeted modules "
            + "(feedforward_modules must be a subset of target_modules, as in PEFT)");
    }
    List<Param> added = new ArrayList<>();
    encoder.mapLinears(layer -> {
      if (!targets.contains(layer.name())) return layer;
      boolean ff = cfg.isFeedforward(layer.name());
      long[] shape = ff ? new long[] {1, layer.inFeatures()} : new long[] {layer.outFeatures(), 1};
      Param l = Param.trainable(layer.name() + "." + KEY, Nd4j.ones(dtype, shape));
      added.add(l);
      return new Ia3Linear(layer, l, ff);
    });
    return added;
  }
}
