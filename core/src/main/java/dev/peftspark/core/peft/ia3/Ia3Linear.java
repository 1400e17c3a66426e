package dev.peftspark.core.peft.ia3;

import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;

/**
 * PEFT's IA3 on a linear: a learned vector {@code l} scales the output ({@code y = base(x) ∘ l}, l saved as
 * {@code [out, 1]}; the bias is scaled too, as in PEFT) or, for feed-forward modules, the input
 * ({@code y = base(x ∘ l)}, l saved as {@code [1, in]}).
 */
public final class Ia3Linear implements LinearLayer {
  private final LinearLayer base;
  private final Param l;              // <module>.ia3_l
  private final boolean feedforward;
  private INDArray kept;              // feed-forward: the input x; otherwise: base(x) before scaling

  public Ia3Linear(LinearLayer base, Param l, boolean feedforward) {
    long[] want = feedforward ? new long[] {1, base.inFeatures()} : new long[] {base.outFeatures(), 1};
    if (!java.util.Arrays.equals(l.shape, want))
      throw new IllegalArgumentException(l + " does not fit " + base.name() + ": expected " + java.util.Arrays.toString(want));
    this.base = base;
    this.l = l;
    this.feedforward = feedforward;
  }

  @Override public String name() { return base.name(); }
  @Override public int inFeatures() { return base.inFeatures(); }
  @Override public int outFeatures() { return base.outFeatures(); }
  @Override public LinearLayer base() { return base; }
  public Param vector() { return l; }
  public boolean isFeedforward() { return feedforward; }

  @Override
  public List<Param> params() {
    List<Param> all = new ArrayList<>(base.params());
    all.add(l);
    return all;
  }

  private INDArray row() { return l.value().reshape(1, l.length()); }

  @Override
  public INDArray forward(INDArray x) {
    if (feedforward) {
      kept = x;
      return base.forward(x.mulRowVector(row()));
    }
    kept = base.forward(x);
    return kept.mulRowVector(row());
  }

  @Override
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    INDArray dx;
    if (feedforward) {
      INDArray dxs = base.backward(dy, true);                                     // d(x ∘ l)
      if (l.isTrainable()) l.grad().addi(dxs.mul(kept).sum(0).reshape(l.shape));
      dx = needInputGrad ? dxs.muliRowVector(row()) : null;
    } else {
      if (l.isTrainable()) l.grad().addi(dy.mul(kept).sum(0).reshape(l.shape));
      dx = base.backward(dy.mulRowVector(row()), needInputGrad);
    }
    kept = null;
    return dx;
  }

  /** The weight PEFT's merge writes: {@code diag(l)·W} (output scaling) or {@code W·diag(l)} (input scaling). */
  public INDArray mergedWeight() {
    INDArray w = plain().weight().value().dup();
    return feedforward ? w.muliRowVector(row()) : w.muliColumnVector(l.value().reshape(l.length(), 1));
  }

  /** The merged bias: scaled with the output for output scaling, unchanged for input scaling; null if none. */
  public INDArray mergedBias() {
    Param b = plain().bias();
    if (b == null) return null;
    return feedforward ? b.value().dup() : b.value().mul(l.value().reshape(b.shape));
  }

  private Linear plain() {
    if (base instanceof Linear lin) return lin;
    throw new IllegalStateException(name() + ": merging needs a full-precision base, this one is " + base.getClass().getSimpleName());
  }
}
