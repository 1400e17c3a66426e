package dev.peftspark.core.optim;

import dev.peftspark.core.nn.NativeFloats;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdamW (Loshchilov &amp; Hutter; PyTorch's torch.optim.AdamW): bias-corrected moments and decoupled weight decay
 * {@code p -= lr·wd·p}, applied only where {@code decayMask} is 1 (matrices; not biases or norms, as HF does).
 *
 * <p>Single precision runs as one fused loop over blocks of the flat native buffers on every thread
 * ({@link NativeFloats#streamElements}), in float arithmetic as PyTorch's float AdamW does, in the reference's
 * order of operations: as libnd4j's eleven single-threaded passes it measured ~20% of a full fine-tuning step.
 * (Computing each element in double instead would match the double reference bit for bit, but C2 does not
 * vectorise the conversions: 4× slower, measured.)
 * The ND4J ops are the reference ({@code OptimizerTest} holds the fused step to them run in double, to a few float
 * roundings) and the path for other types and layouts.
 */
public final class AdamW implements Optimizer {
  private final INDArray m, v;        // [size] first and second moments
  private INDArray tmp;               // [size] the reference path's scratch, made on its first step
  private final INDArray decayMask;   // [size] 1 where weight decay applies
  private final double weightDecay, beta1, beta2, eps;
  private long t;

  AdamW(long size, INDArray decayMask, double weightDecay, double beta1, double beta2, double eps) {
    this.m = Nd4j.zeros(decayMask.dataType(), size);
    this.v = Nd4j.zeros(decayMask.dataType(), size);
    this.decayMask = decayMask;
    this.weightDecay = weightDecay;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
  }

  @Override
  public void step(INDArray p, INDArray g, double lr) {
    t++;
    if (fusable(p, g)) fusedStep(p, g, lr);
    else referenceStep(p, g, lr);
  }

  /** Whether {@link #step} takes the fused single-precision loop for these buffers. */
  boolean fusable(INDArray p, INDArray g) {
    long n = m.length();
    return NativeFloats.contiguous(p) && NativeFloats.contiguous(g) && NativeFloats.contiguous(m)
        && NativeFloats.contiguous(v) && NativeFloats.contiguous(decayMask)
        && p.length() == n && g.length() == n && decayMask.length() == n;
  }

  private void fusedStep(INDArray p, INDArray g, double lr) {
    double c1 = 1 - Math.pow(beta1, t), c2 = 1 - Math.pow(beta2, t);
    float lrWd = (float) (lr * weightDecay), b1 = (float) beta1, b2 = (float) beta2;
    float a1 = (float) (1 - beta1), a2 = (float) (1 - beta2), invC2 = (float) (1 / c2), stepSize = (float) (lr / c1);
    float e = (float) eps;
    boolean decay = weightDecay > 0;
    INDArray[] in = decay ? new INDArray[] {p, g, m, v, decayMask} : new INDArray[] {p, g, m, v};
    // p, m and v are outputs that are also inputs: their blocks are updated in place in the inputs' staging arrays
    NativeFloats.streamElements(in, new INDArray[] {p, m, v}, (blocks, from, to) -> {
      float[] ps = blocks.in[0], gs = blocks.in[1], ms = blocks.in[2], vs = blocks.in[3], ds = decay ? blocks.in[4] : null;
      for (int block = from; block < to; block++) {
        int k = blocks.load(block);
        if (decay) {
          for (int i = 0; i < k; i++) ps[i] -= ps[i] * ds[i] * lrWd;
        }
        for (int i = 0; i < k; i++) {
          float gi = gs[i];
          float mi = ms[i] * b1 + gi * a1;
          float vi = vs[i] * b2 + gi * gi * a2;
          ps[i] -= mi / ((float) Math.sqrt(vi * invC2) + e) * stepSize;
          ms[i] = mi;
          vs[i] = vi;
        }
        blocks.store(block, k);
      }
    });
  }

  /** The ND4J ops: any type and layout (the double-precision reference of the fused loop). */
  private void referenceStep(INDArray p, INDArray g, double lr) {
    if (tmp == null) {
      try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) { tmp = Nd4j.zeros(m.dataType(), m.length()); }
    }
    if (weightDecay > 0) p.subi(tmp.assign(p).muli(decayMask).muli(lr * weightDecay));
    m.muli(beta1).addi(tmp.assign(g).muli(1 - beta1));
    v.muli(beta2).addi(tmp.assign(g).muli(g).muli(1 - beta2));
    double c1 = 1 - Math.pow(beta1, t), c2 = 1 - Math.pow(beta2, t);
    // p -= lr · (m / c1) / (sqrt(v / c2) + eps)
    Transforms.sqrt(tmp.assign(v).muli(1 / c2), false).addi(eps);
    p.subi(tmp.rdivi(m).muli(lr / c1));
  }

  @Override
  public Map<String, INDArray> state() {
    Map<String, INDArray> s = new LinkedHashMap<>();
    s.put("adamw.m", m);
    s.put("adamw.v", v);
    s.put("adamw.t", Nd4j.scalar(t));
    return s;
  }

  @Override
  public void load(Map<String, INDArray> state) {
    m.assign(state.get("adamw.m"));
    v.assign(state.get("adamw.v"));
    t = state.get("adamw.t").getLong(0);
  }
}
