package dev.peftspark.core.optim;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.LinkedHashMap;
import java.util.Map;

/** SGD with momentum and L2 weight decay, as torch.optim.SGD: {@code b = μb + (g + wd·p); p -= lr·b}. */
public final class Sgd implements Optimizer {
  private final INDArray buf;         // [size] momentum buffer
  private final INDArray decayMask;   // [size]
  private final double weightDecay, momentum;
  private boolean started;

  Sgd(long size, INDArray decayMask, double weightDecay, double momentum) {
    this.buf = Nd4j.zeros(decayMask.dataType(), size);
    this.decayMask = decayMask;
    this.weightDecay = weightDecay;
    this.momentum = momentum;
  }

  @Override
  public void step(INDArray p, INDArray g, double lr) {
    INDArray d = weightDecay > 0 ? g.add(p.mul(decayMask).muli(weightDecay)) : g;
    if (momentum > 0) {
      if (started) buf.muli(momentum).addi(d); else buf.assign(d);   // torch: first step b = d
      started = true;
      d = buf;
    }
    p.subi(d.mul(lr));
  }

  @Override
  public Map<String, INDArray> state() {
    Map<String, INDArray> s = new LinkedHashMap<>();
    s.put("sgd.momentum", buf);
    s.put("sgd.started", Nd4j.scalar(started ? 1L : 0L));
    return s;
  }

  @Override
  public void load(Map<String, INDArray> state) {
    buf.assign(state.get("sgd.momentum"));
    started = state.get("sgd.started").getLong(0) != 0;
  }
}
