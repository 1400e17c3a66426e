package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.List;
import java.util.function.UnaryOperator;

/** LLaMA's feed-forward block: {@code down(silu(gate(x)) ∘ up(x))}, {@code silu(g) = g·σ(g)}. */
public final class SwiGlu {
  private LinearLayer gate, up, down;   // gate_proj, up_proj [I, H]; down_proj [H, I]
  private INDArray g, u, sig;           // [N, I] gate and up outputs, σ(g)

  public SwiGlu(LinearLayer gate, LinearLayer up, LinearLayer down) {
    this.gate = gate;
    this.up = up;
    this.down = down;
  }

  public void mapLinears(UnaryOperator<LinearLayer> f) {
    gate = f.apply(gate);
    up = f.apply(up);
    down = f.apply(down);
  }

  public List<LinearLayer> linears() { return List.of(gate, up, down); }

  public INDArray forward(INDArray x) {
    g = gate.forward(x);
    u = up.forward(x);
    sig = Transforms.sigmoid(g, true);
    return down.forward(g.mul(sig).muli(u));
  }

  /** dL/dx, or null when {@code needInputGrad} is false. dsilu/dg = σ(g)·(1 + g·(1 − σ(g))). */
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    // the three [N, I] gradients live outside any arena and are freed as soon as the projections have used them
    INDArray dh, du, dsilu;
    try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
      dh = down.backward(dy, true);
      du = dh.mul(g).muli(sig);                                              // dh ∘ silu(g)
      dsilu = sig.rsub(1.0).muli(g).addi(1.0).muli(sig);                     // σ(1 + g(1 − σ))
    }
    INDArray dg = dh.muli(u).muli(dsilu);
    dsilu.close();
    g = u = sig = null;
    INDArray dx = gate.backward(dg, needInputGrad);
    dh.close();
    INDArray dxu = up.backward(du, needInputGrad);
    du.close();
    return needInputGrad ? dx.addi(dxu) : null;
  }
}
