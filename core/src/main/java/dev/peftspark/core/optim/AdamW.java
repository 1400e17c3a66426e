package dev.peftspark.core.optim;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdamW (Loshchilov &amp; Hutter; PyTorch's torch.optim.AdamW): bias-corrected moments and decoupled weight decay
 * {@code p -= lr·wd·p}, applied only where {@code decayMask} is 1 (matrices; not biases or norms, as HF does).
 */
public final class AdamW implements Optimizer {
  private final INDArray m, v;        // [size] first and second moments
  private final INDArray tmp;         // [size] scratch, so a step allocates nothing (full fine-tuning: 22M floats)
  private final INDArray decayMask;   // [size] 1 where weight decay applies
  private final double weightDecay, beta1, beta2, eps;
  private long t;

  AdamW(long size, INDArray decayMask, double weightDecay, double beta1, double beta2, double eps) {
    this.m = Nd4j.zeros(decayMask.dataType(), size);
    this.v = Nd4j.zeros(decayMask.dataType(), size);
    this.tmp = Nd4j.zeros(decayMask.dataType(), size);
    this.decayMask = decayMask;
    this.weightDecay = weightDecay;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
  }

  @Override
  public void step(INDArray p, INDArray g, double lr) {
    t++;
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
