package dev.peftspark.core.nn;

import java.util.List;
import java.util.function.UnaryOperator;

/** A model whose linear modules PEFT methods can find by name and replace (wrap). */
public interface LinearModules {
  /** The linear modules PEFT may target, in module order (a language model's output head is not among them). */
  List<LinearLayer> linears();

  /** Replaces every linear module by {@code f(module)}; {@code f} returns its argument for modules it leaves alone. */
  void mapLinears(UnaryOperator<LinearLayer> f);
}
