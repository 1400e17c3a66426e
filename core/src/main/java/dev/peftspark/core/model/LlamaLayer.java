package dev.peftspark.core.model;

import dev.peftspark.core.nn.AttentionCache;
import dev.peftspark.core.nn.CausalAttention;
import dev.peftspark.core.nn.CausalMask;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.NativeFloats;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.RmsNorm;
import dev.peftspark.core.nn.Rope;
import dev.peftspark.core.nn.SwiGlu;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/** One pre-norm LLaMA block: {@code h = x + Attn(RMSNorm₁(x)); y = h + SwiGLU(RMSNorm₂(h))}. */
public final class LlamaLayer {
  private final RmsNorm inputNorm;       // input_layernorm
  private final CausalAttention attention;
  private final RmsNorm postNorm;        // post_attention_layernorm
  private final SwiGlu mlp;

  public LlamaLayer(RmsNorm inputNorm, CausalAttention attention, RmsNorm postNorm, SwiGlu mlp) {
    this.inputNorm = inputNorm;
    this.attention = attention;
    this.postNorm = postNorm;
    this.mlp = mlp;
  }

  public CausalAttention attention() { return attention; }
  public SwiGlu mlp() { return mlp; }

  public INDArray forward(INDArray x, CausalMask mask, Rope.Tables tables) {
    INDArray h = NativeFloats.addInPlace(attention.forward(inputNorm.forward(x), mask, tables), x);
    return NativeFloats.addInPlace(mlp.forward(postNorm.forward(h)), h);
  }

  /** The cached decoding path (see {@link CausalAttention#step}): {@code x [n, H]} of new tokens only. */
  public INDArray step(INDArray x, AttentionCache cache, Rope.Tables tables, int slidingWindow) {
    INDArray h = attention.step(inputNorm.forward(x), cache, tables, slidingWindow).addi(x);
    return mlp.forward(postNorm.forward(h)).addi(h);
  }

  public INDArray backward(INDArray dy, boolean needInputGrad) {
    INDArray dh = NativeFloats.addInPlace(postNorm.backward(mlp.backward(dy, true)), dy);
    boolean needNormGrad = needInputGrad || inputNorm.weight().isTrainable();
    INDArray da = attention.backward(dh, needNormGrad);
    if (!needNormGrad) return null;
    INDArray dx = inputNorm.backward(da);
    return needInputGrad ? NativeFloats.addInPlace(dx, dh) : null;
  }

  /** This layer for {@link LayerCheckpoints}, with the batch's mask and rotary tables bound. */
  LayerCheckpoints.Layer checkpointed(CausalMask mask, Rope.Tables tables) {
    return new LayerCheckpoints.Layer() {
      @Override public INDArray forward(INDArray x) { return LlamaLayer.this.forward(x, mask, tables); }
      @Override public INDArray backward(INDArray dy, boolean needInputGrad) { return LlamaLayer.this.backward(dy, needInputGrad); }
      @Override public void repeatNextForward() { for (LinearLayer l : linears()) l.repeatNextForward(); }
    };
  }

  public void mapLinears(UnaryOperator<LinearLayer> f) {
    attention.mapLinears(f);
    mlp.mapLinears(f);
  }

  public List<LinearLayer> linears() {
    List<LinearLayer> all = new ArrayList<>(attention.linears());
    all.addAll(mlp.linears());
    return all;
  }

  public List<Param> params() {
    List<Param> all = new ArrayList<>();
    for (LinearLayer l : linears()) all.addAll(l.params());
    all.add(inputNorm.weight());
    all.add(postNorm.weight());
    return all;
  }

  public boolean hasTrainable() { return params().stream().anyMatch(Param::isTrainable); }
}
