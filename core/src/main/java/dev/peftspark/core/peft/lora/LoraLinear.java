package dev.peftspark.core.peft.lora;

import dev.peftspark.core.nn.Dropout;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;

/** {@code y = base(x) + s · B (A · dropout(x))}, with {@code A [r, in]}, {@code B [out, r]} (PEFT's lora.Linear). */
public final class LoraLinear implements LinearLayer {
  private final Linear base;
  private final Param a;          // [r, in]   <module>.lora_A.weight
  private final Param b;          // [out, r]  <module>.lora_B.weight
  private final double scaling;
  private final Dropout dropout;
  private INDArray xd;            // [N, in] dropout(x)
  private INDArray h;             // [N, r]  xd · Aᵀ

  public LoraLinear(Linear base, Param a, Param b, double scaling, Dropout dropout) {
    this.base = base;
    this.a = a;
    this.b = b;
    this.scaling = scaling;
    this.dropout = dropout;
  }

  @Override public String name() { return base.name(); }
  @Override public int inFeatures() { return base.inFeatures(); }
  @Override public int outFeatures() { return base.outFeatures(); }
  @Override public Linear base() { return base; }
  public Param loraA() { return a; }
  public Param loraB() { return b; }
  public double scaling() { return scaling; }
  public Dropout dropout() { return dropout; }

  @Override
  public List<Param> params() {
    List<Param> all = new ArrayList<>(base.params());
    all.add(a);
    all.add(b);
    return all;
  }

  @Override
  public INDArray forward(INDArray x) {
    INDArray y = base.forward(x);
    xd = dropout.forward(x);
    h = Nd4j.gemm(xd, a.value(), false, true);
    Nd4j.gemm(h, b.value(), y, false, true, scaling, 1.0);
    return y;
  }

  @Override
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    if (b.isTrainable()) Nd4j.gemm(dy, h, b.grad(), true, false, scaling, 1.0);   // dB += s dyᵀ h
    INDArray dh = Nd4j.gemm(dy, b.value(), false, false).muli(scaling);            // [N, r]
    if (a.isTrainable()) Nd4j.gemm(dh, xd, a.grad(), true, false, 1.0, 1.0);      // dA += dhᵀ xd
    INDArray dx = base.backward(dy, needInputGrad);
    if (needInputGrad) dx.addi(dropout.backward(Nd4j.gemm(dh, a.value(), false, false)));
    xd = null;
    h = null;
    return dx;
  }

  /** W + s · B A, the weight PEFT's merge_and_unload writes ([out, in]). */
  public INDArray mergedWeight() {
    INDArray w = base.weight().value().dup();
    Nd4j.gemm(b.value(), a.value(), w, false, false, scaling, 1.0);
    return w;
  }
}
