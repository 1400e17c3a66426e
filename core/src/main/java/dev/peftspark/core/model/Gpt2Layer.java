package dev.peftspark.core.model;

import dev.peftspark.core.nn.AttentionCache;
import dev.peftspark.core.nn.CausalAttention;
import dev.peftspark.core.nn.CausalMask;
import dev.peftspark.core.nn.GeluTanh;
import dev.peftspark.core.nn.LayerNorm;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.NativeFloats;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/** One pre-LN GPT-2 block: {@code h = x + Attn(ln_1(x)); y = h + c_proj(gelu_new(c_fc(ln_2(h))))}. */
public final class Gpt2Layer {
  private final LayerNorm ln1, ln2;
  private final CausalAttention attention;   // fused c_attn + c_proj
  private LinearLayer fc, proj;              // mlp.c_fc [I, H], mlp.c_proj [H, I] (stored transposed as Linear)
  private final GeluTanh gelu = new GeluTanh();

  public Gpt2Layer(LayerNorm ln1, CausalAttention attention, LayerNorm ln2, LinearLayer fc, LinearLayer proj) {
    this.ln1 = ln1;
    this.attention = attention;
    this.ln2 = ln2;
    this.fc = fc;
    this.proj = proj;
  }

  public CausalAttention attention() { return attention; }

  public INDArray forward(INDArray x, CausalMask mask) {
    INDArray h = NativeFloats.addInPlace(attention.forward(ln1.forward(x), mask, null), x);
    return NativeFloats.addInPlace(proj.forward(gelu.forward(fc.forward(ln2.forward(h)))), h);
  }

  /** The cached decoding path (see {@link CausalAttention#step}): {@code x [n, H]} of new tokens only. */
  public INDArray step(INDArray x, AttentionCache cache) {
    INDArray h = attention.step(ln1.forward(x), cache, null, 0).addi(x);
    return proj.forward(gelu.forward(fc.forward(ln2.forward(h)))).addi(h);
  }

  public INDArray backward(INDArray dy, boolean needInputGrad) {
    INDArray dh = NativeFloats.addInPlace(ln2.backward(fc.backward(gelu.backward(proj.backward(dy, true)), true)), dy);
    boolean needNormGrad = needInputGrad || ln1.gamma().isTrainable() || ln1.beta().isTrainable();
    INDArray da = attention.backward(dh, needNormGrad);
    if (!needNormGrad) return null;
    INDArray dx = ln1.backward(da);
    return needInputGrad ? NativeFloats.addInPlace(dx, dh) : null;
  }

  /** This layer for {@link LayerCheckpoints}, with the batch's mask bound. */
  LayerCheckpoints.Layer checkpointed(CausalMask mask) {
    return new LayerCheckpoints.Layer() {
      @Override public INDArray forward(INDArray x) { return Gpt2Layer.this.forward(x, mask); }
      @Override public INDArray backward(INDArray dy, boolean needInputGrad) { return Gpt2Layer.this.backward(dy, needInputGrad); }
      @Override public void repeatNextForward() { for (LinearLayer l : linears()) l.repeatNextForward(); }
    };
  }

  public void mapLinears(UnaryOperator<LinearLayer> f) {
    attention.mapLinears(f);
    fc = f.apply(fc);
    proj = f.apply(proj);
  }

  public List<LinearLayer> linears() {
    List<LinearLayer> all = new ArrayList<>(attention.linears());
    all.add(fc);
    all.add(proj);
    return all;
  }

  public List<Param> params() {
    List<Param> all = new ArrayList<>();
    for (LinearLayer l : linears()) all.addAll(l.params());
    all.addAll(List.of(ln1.gamma(), ln1.beta(), ln2.gamma(), ln2.beta()));
    return all;
  }

  public boolean hasTrainable() { return params().stream().anyMatch(Param::isTrainable); }
}
