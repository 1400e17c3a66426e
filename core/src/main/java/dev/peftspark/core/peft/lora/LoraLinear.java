package dev.peftspark.core.peft.lora;

import dev.peftspark.core.nn.NativeFloats;
import dev.peftspark.core.nn.Dropout;
import dev.peftspark.core.nn.Gemm;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;

/**
 * PEFT's lora.Linear: {@code y = base(x) + s · B (A · xd)}, {@code xd = dropout(x)}, {@code A [r, in]},
 * {@code B [out, r]}. With a magnitude vector m (DoRA, {@code use_dora}) it is PEFT's DoRA instead:
 * {@code y = base(x) + (m/n − 1) ∘ (xd Wᵀ) + (m/n) ∘ (s · B A xd)} with {@code n = ‖W + s·BA‖} per output row,
 * and n treated as a constant in backward (PEFT detaches it).
 */
public final class LoraLinear implements LinearLayer {
  private final LinearLayer base;
  private final Param a;          // [r, in]   <module>.lora_A.weight
  private final Param b;          // [out, r]  <module>.lora_B.weight
  private final Param magnitude;  // [out]     <module>.lora_magnitude_vector, null unless DoRA
  private final double scaling;
  private final Dropout dropout;
  private INDArray xd;            // [N, in] dropout(x)
  private INDArray h;             // [N, r]  xd · Aᵀ
  private INDArray norm;          // DoRA: [1, out] n, held constant
  private INDArray ratio;         // DoRA: [1, out] m / n
  private INDArray zu;            // DoRA: [N, out] xd Wᵀ + s · h Bᵀ (what m/n multiplies)

  public LoraLinear(LinearLayer base, Param a, Param b, double scaling, Dropout dropout) {
    this(base, a, b, null, scaling, dropout);
  }

  public LoraLinear(LinearLayer base, Param a, Param b, Param magnitude, double scaling, Dropout dropout) {
    if (magnitude != null && (magnitude.shape.length != 1 || magnitude.shape[0] != base.outFeatures()))
      throw new IllegalArgumentException(magnitude + " does not fit " + base.name() + " (" + base.outFeatures() + " outputs)");
    this.base = base;
    this.a = a;
    this.b = b;
    this.magnitude = magnitude;
    this.scaling = scaling;
    this.dropout = dropout;
  }

  @Override public String name() { return base.name(); }
  @Override public int inFeatures() { return base.inFeatures(); }
  @Override public int outFeatures() { return base.outFeatures(); }
  @Override public LinearLayer base() { return base; }
  public Param loraA() { return a; }
  public Param loraB() { return b; }
  /** DoRA's magnitude vector, or null for plain LoRA. */
  public Param magnitude() { return magnitude; }
  public double scaling() { return scaling; }
  public Dropout dropout() { return dropout; }

  @Override
  public List<Param> params() {
    List<Param> all = new ArrayList<>(base.params());
    all.add(a);
    all.add(b);
    if (magnitude != null) all.add(magnitude);
    return all;
  }

  @Override public void repeatNextForward() { dropout.repeatNextForward(); }

  @Override
  public INDArray forward(INDArray x) {
    INDArray y = base.forward(x);
    xd = dropout.forward(x);
    h = Gemm.mm(xd, a.value(), false, true);
    if (magnitude == null) {
      Gemm.gemm(h, b.value(), y, false, true, scaling, 1.0);
      return y;
    }
    norm = rowNorms(BaseWeight.weight(base), a.value(), b.value(), scaling);
    ratio = magnitude.value().reshape(1, outFeatures()).div(norm);
    if (dropout.active()) {
      zu = Gemm.mm(xd, BaseWeight.weight(base), false, true);
    } else {                                   // xd = x: reuse the base product, minus its bias
      INDArray bias = BaseWeight.bias(base);
      zu = bias == null ? y.dup() : y.subRowVector(bias.reshape(1, outFeatures()));
    }
    INDArray u = Gemm.mm(h, b.value(), false, true).muli(scaling);              // s · B A xd
    y.addi(zu.mulRowVector(ratio.sub(1.0))).addi(u.mulRowVector(ratio));
    zu.addi(u);
    return y;
  }

  @Override
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    if (magnitude != null) return doraBackward(dy, needInputGrad);
    if (b.isTrainable()) Gemm.gemm(dy, h, b.grad(), true, false, scaling, 1.0);   // dB += s dyᵀ h
    INDArray dh = Gemm.mm(dy, b.value(), false, false).muli(scaling);            // [N, r]
    if (a.isTrainable()) Gemm.gemm(dh, xd, a.grad(), true, false, 1.0, 1.0);      // dA += dhᵀ xd
    INDArray dx = base.backward(dy, needInputGrad);
    if (needInputGrad && dropout.active()) dx.addi(dropout.backward(Gemm.mm(dh, a.value(), false, false)));
    else if (needInputGrad) Gemm.gemm(dh, a.value(), dx, false, false, 1.0, 1.0);      // dx += dh A
    xd = null;
    h = null;
    return dx;
  }

  private INDArray doraBackward(INDArray dy, boolean needInputGrad) {
    if (magnitude.isTrainable()) magnitude.grad().addi(dy.mul(zu).sum(0).divi(norm.reshape(outFeatures())));
    INDArray gr = dy.mulRowVector(ratio);                                           // dy ∘ m/n
    if (b.isTrainable()) Gemm.gemm(gr, h, b.grad(), true, false, scaling, 1.0);    // dB += s (dy∘m/n)ᵀ h
    INDArray dh = Gemm.mm(gr, b.value(), false, false).muli(scaling);            // [N, r]
    if (a.isTrainable()) Gemm.gemm(dh, xd, a.grad(), true, false, 1.0, 1.0);       // dA += dhᵀ xd
    INDArray dx;
    if (!dropout.active()) {                   // base(x) + (m/n − 1)∘(x Wᵀ): d/dx is (dy ∘ m/n) W
      dx = base.backward(gr, needInputGrad);
      if (needInputGrad) dx.addi(Gemm.mm(dh, a.value(), false, false));
    } else {
      dx = base.backward(dy, needInputGrad);
      if (needInputGrad) {
        INDArray dxd = Gemm.mm(dy.mulRowVector(ratio.sub(1.0)), BaseWeight.weight(base), false, false);
        Gemm.gemm(dh, a.value(), dxd, false, false, 1.0, 1.0);
        dx.addi(dropout.backward(dxd));
      }
    }
    xd = h = zu = norm = ratio = null;
    return dx;
  }

  /** ‖W + s·B A‖ per output row, as [1, out] (PEFT's DoRA weight norm). */
  static INDArray rowNorms(INDArray w, INDArray a, INDArray b, double scaling) {
    INDArray merged = w.dup();
    Gemm.gemm(b, a, merged, false, false, scaling, 1.0);
    return merged.norm2(1).reshape(1, w.size(0));
  }

  /**
   * The weight PEFT's merge_and_unload writes ([out, in]): {@code W + s·BA}, and for DoRA that scaled per row by
   * {@code m / ‖W + s·BA‖}.
   */
  public INDArray mergedWeight() {
    INDArray w = BaseWeight.weight(base).dup();
    Gemm.gemm(b.value(), a.value(), w, false, false, scaling, 1.0);
    if (magnitude == null) return w;
    INDArray n = w.norm2(1).reshape(w.size(0), 1);
    return w.muliColumnVector(magnitude.value().reshape(w.size(0), 1).div(n));
  }
}
