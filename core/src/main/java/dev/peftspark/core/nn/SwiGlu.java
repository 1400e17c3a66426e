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
    INDArray gx = gate.forward(x), ux = up.forward(x);
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
        // σ(g) recomputed rather than kept: what stays between forward and backward is g and u, off the Java heap;
        // read and written in native memory a block at a time through small per-thread arrays (four [N, I]
        // float[] copies would set the Java heap's size: 23 MiB at TinyLlama's shape)
        INDArray dhc = NativeFloats.cOrdered(dh);
        du = Nd4j.createUninitialized(DataType.FLOAT, dh.shape(), 'c');
        NativeFloats.streamElements(new INDArray[] {dhc, g, u}, new INDArray[] {du, dhc}, (blocks, from, to) -> {
          float[] dd = blocks.in[0], xx = blocks.in[1], uv = blocks.in[2], e = blocks.out[0], dgv = blocks.out[1];
          for (int b = from; b < to; b++) {
            int k = blocks.load(b);
            negatedExp(xx, e, k);                                     // e^−g, bulk (vectorised)
            for (int i = 0; i < k; i++) {
              float x = xx[i], sg = 1f / (1f + e[i]);
              e[i] = dd[i] * x * sg;                                  // dh ∘ silu(g)
              dgv[i] = dd[i] * (uv[i] * sg * (1f + x * (1f - sg)));    // dh ∘ (u ∘ dsilu/dg)
            }
            blocks.store(b, k);
          }
        });
        dg = dhc;
        if (dhc != dh) dh.close();
        g = u = null;
      } else {
        du = dh.mul(g).muli(sig);                                                // dh ∘ silu(g)
        INDArray dsilu = sig.rsub(1.0).muli(g).addi(1.0).muli(sig);              // σ(1 + g(1 − σ))
        dg = dh.muli(u).muli(dsilu);                                             // in place: dg is dh
        dsilu.close();
        g = u = sig = null;
      }
    }
    INDArray dx = gate.backward(dg, needInputGrad);
    dg.close();
    INDArray dxu = up.backward(du, needInputGrad);
    du.close();
    return needInputGrad ? NativeFloats.addInPlace(dx, dxu) : null;
  }

  /**
   * Single precision as one pass over the rows on {@link Parallel}'s threads (the double path above is the
   * reference that {@code SwiGluTest} holds it to).
   */
  private INDArray forwardFloat(INDArray gx, INDArray ux) {
    INDArray gc = NativeFloats.cOrdered(gx), uc = NativeFloats.cOrdered(ux);
    INDArray h = Nd4j.createUninitialized(DataType.FLOAT, gx.shape(), 'c');
    NativeFloats.streamElements(new INDArray[] {gc, uc}, new INDArray[] {h}, (blocks, from, to) -> {
      float[] xx = blocks.in[0], uv = blocks.in[1], y = blocks.out[0];
      for (int b = from; b < to; b++) {
        int k = blocks.load(b);
        negatedExp(xx, y, k);
        for (int i = 0; i < k; i++) y[i] = xx[i] / (1f + y[i]) * uv[i];   // silu(g) ∘ u = g / (1 + e^−g) ∘ u
        blocks.store(b, k);
      }
    });
    g = gc;
    u = uc;
    return h;
  }

  /** {@code out[i] = e^−x[i]} for {@code i < k} with the bulk (vectorised) {@link Floats#exp(float[], int, int)}. */
  private static void negatedExp(float[] x, float[] out, int k) {
    for (int i = 0; i < k; i++) out[i] = -x[i];
    Floats.exp(out, 0, k);
  }
}
