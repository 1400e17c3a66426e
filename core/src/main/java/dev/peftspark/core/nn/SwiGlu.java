package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.List;
import java.util.function.UnaryOperator;

/** LLaMA's feed-forward block: {@code down(silu(gate(x)) ∘ up(x))}, {@code silu(g) = g·σ(g)}. */
public final class SwiGlu {
  private LinearLayer gate, up, down;   // gate_proj, up_proj [I, H]; down_proj [H, I]
  private INDArray g, u, sig;           // [N, I] gate and up outputs, σ(g) (σ only on the double reference path)
  private FusedProjection fusedGateUp;  // gate and up as one product in the last forward (null: one by one)

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
    fusedGateUp = FusedProjection.of(List.of(gate, up));
    INDArray gx, ux;
    if (fusedGateUp != null) {   // one product, then g and u copied out side by side (bulk row copies)
      INDArray[] parts = FusedProjection.split(fusedGateUp.forward(x), gate.outFeatures(), up.outFeatures());
      gx = parts[0];
      ux = parts[1];
    } else {
      gx = gate.forward(x);
      ux = up.forward(x);
    }
    if (gx.dataType() == DataType.FLOAT) return down.forward(forwardFloat(gx, ux));
    g = gx;
    u = ux;
    sig = Transforms.sigmoid(g, true);
    return down.forward(g.mul(sig).muli(u));
  }

  /** dL/dx, or null when {@code needInputGrad} is false. dsilu/dg = σ(g)·(1 + g·(1 − σ(g))). */
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    // the three [N, I] gradients live outside any arena and are freed as soon as the projections have used them
    INDArray du, dg;
    try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
      INDArray dh = down.backward(dy, true);
      if (g.dataType() == DataType.FLOAT) {
        // σ(g) recomputed rather than kept: what stays between forward and backward is g and u, off the Java heap
        float[] d = Floats.read(dh), gg = Floats.read(g), uu = Floats.read(u), duF = new float[d.length];
        int cols = (int) dh.size(1);
        Parallel.forRange((int) dh.size(0), (from, to) -> {
          for (int i = from * cols; i < to * cols; i++) {
            float x = gg[i], sg = 1f / (1f + Floats.exp(-x));
            duF[i] = d[i] * x * sg;                               // dh ∘ silu(g)
            d[i] *= uu[i] * sg * (1f + x * (1f - sg));            // dh ∘ u ∘ dsilu/dg
          }
        });
        du = Floats.write(duF, dh.shape());
        dg = Floats.write(d, dh.shape());
        dh.close();
        g = u = null;
      } else {
        du = dh.mul(g).muli(sig);                                                // dh ∘ silu(g)
        INDArray dsilu = sig.rsub(1.0).muli(g).addi(1.0).muli(sig);              // σ(1 + g(1 − σ))
        dg = dh.muli(u).muli(dsilu);                                             // in place: dg is dh
        dsilu.close();
        g = u = sig = null;
      }
    }
    if (fusedGateUp != null) {
      FusedProjection f = fusedGateUp;
      fusedGateUp = null;
      INDArray dgu = FusedProjection.join(dg, du);
      dg.close();
      du.close();
      INDArray dx = f.backward(dgu, needInputGrad);
      dgu.close();
      return dx;
    }
    INDArray dx = gate.backward(dg, needInputGrad);
    dg.close();
    INDArray dxu = up.backward(du, needInputGrad);
    du.close();
    return needInputGrad ? dx.addi(dxu) : null;
  }

  /**
   * Single precision as one pass over the rows on {@link Parallel}'s threads (the double path above is the
   * reference that {@code SwiGluTest} holds it to).
   */
  private INDArray forwardFloat(INDArray gx, INDArray ux) {
    float[] gg = Floats.read(gx), uu = Floats.read(ux), out = new float[gg.length];
    int cols = (int) gx.size(1);
    Parallel.forRange((int) gx.size(0), (from, to) -> {
      for (int i = from * cols; i < to * cols; i++) {
        float x = gg[i];
        out[i] = x / (1f + Floats.exp(-x)) * uu[i];   // silu(g) ∘ u
      }
    });
    g = gx;
    u = ux;
    return Floats.write(out, gx.shape());
  }
}
