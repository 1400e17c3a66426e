package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Bidirectional multi-head self-attention with a key padding mask (BERT): {@code x [B*T, H] -> [B*T, H]},
 * including the output projection. Q, K, V, O are {@link LinearLayer}s so PEFT methods can wrap them.
 */
public final class SelfAttention {
  private LinearLayer query, key, value, output;
  private final int heads;
  private int batch, seq;
  private INDArray q, k, v;   // [B, nh, T, hd]
  private INDArray probs;     // [B, nh, T, T]

  public SelfAttention(LinearLayer query, LinearLayer key, LinearLayer value, LinearLayer output, int heads) {
    this.query = query;
    this.key = key;
    this.value = value;
    this.output = output;
    this.heads = heads;
  }

  public LinearLayer query() { return query; }
  public LinearLayer key() { return key; }
  public LinearLayer value() { return value; }
  public LinearLayer output() { return output; }

  /** Replaces each projection by {@code f(projection)} (how PEFT methods inject themselves). */
  public void mapLinears(java.util.function.UnaryOperator<LinearLayer> f) {
    query = f.apply(query);
    key = f.apply(key);
    value = f.apply(value);
    output = f.apply(output);
  }

  public java.util.List<LinearLayer> linears() { return java.util.List.of(query, key, value, output); }

  /**
   * @param x        [B*T, H]
   * @param maskBias [B, T]: 0 for real tokens, a large negative number for padding (added to the scores)
   */
  public INDArray forward(INDArray x, INDArray maskBias, int batch, int seq) {
    this.batch = batch;
    this.seq = seq;
    q = splitHeads(query.forward(x));
    k = splitHeads(key.forward(x));
    v = splitHeads(value.forward(x));
    int hd = (int) q.size(3);
    INDArray scores = Nd4j.matmul(q, k, false, true, false).muli(1.0 / Math.sqrt(hd)); // [B, nh, T, T]
    Nd4j.getExecutioner().exec(new BroadcastAddOp(scores, maskBias, scores, 0, 3));
    probs = Nd4j.exec(new SoftMax(scores, scores, -1))[0];
    INDArray ctx = Nd4j.matmul(probs, v);                                                 // [B, nh, T, hd]
    return output.forward(mergeHeads(ctx));
  }

  /** dL/dx given dL/dy; {@code needInputGrad} false skips the input gradient (nothing below is trainable). */
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    INDArray dctx = splitHeads(output.backward(dy, true));                     // [B, nh, T, hd]
    INDArray dprobs = Nd4j.matmul(dctx, v, false, true, false);                // [B, nh, T, T]
    INDArray dv = Nd4j.matmul(probs, dctx, true, false, false);                // [B, nh, T, hd]
    // softmax backward on rows: ds = p * (dp - sum(dp * p))
    long rows = (long) batch * heads * seq;
    INDArray p2 = probs.reshape('c', rows, seq);
    INDArray dp2 = dprobs.reshape('c', rows, seq);
    INDArray rowDot = dp2.mul(p2).sum(true, 1);
    INDArray dscores = dp2.subiColumnVector(rowDot).muli(p2).reshape('c', batch, heads, seq, seq);
    dscores.muli(1.0 / Math.sqrt(q.size(3)));
    INDArray dq = Nd4j.matmul(dscores, k);                                     // [B, nh, T, hd]
    INDArray dk = Nd4j.matmul(dscores, q, true, false, false);                 // [B, nh, T, hd]
    q = k = v = probs = null;
    INDArray dx = query.backward(mergeHeads(dq), needInputGrad);
    INDArray dxk = key.backward(mergeHeads(dk), needInputGrad);
    INDArray dxv = value.backward(mergeHeads(dv), needInputGrad);
    if (!needInputGrad) return null;
    return dx.addi(dxk).addi(dxv);
  }

  /** [B*T, H] -> [B, nh, T, hd] (contiguous). */
  private INDArray splitHeads(INDArray x) {
    int hd = (int) x.size(1) / heads;
    return x.reshape('c', batch, seq, heads, hd).permute(0, 2, 1, 3).dup('c');
  }

  /** [B, nh, T, hd] -> [B*T, H] (contiguous). */
  private INDArray mergeHeads(INDArray x) {
    return x.permute(0, 2, 1, 3).dup('c').reshape('c', (long) batch * seq, x.size(1) * x.size(3));
  }
}
