package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Bidirectional multi-head self-attention with a key padding mask (BERT): {@code x [B*T, H] -> [B*T, H]},
 * including the output projection. Q, K, V, O are {@link LinearLayer}s so PEFT methods can wrap them. With prefix
 * tuning, {@code nv} trainable keys and values (this layer's columns of one shared {@code [nv, L·2·H]} tensor) come
 * before the sequence's own, visible to every query.
 */
public final class SelfAttention {
  private LinearLayer query, key, value, output;
  private final int heads;
  private int batch, seq;
  private Param prefix;       // [nv, L*2*H] shared by all layers (null: none)
  private int prefixLayer;    // this layer's index into it
  private INDArray q, k, v;   // [B, nh, T, hd]; k and v [B, nh, nv+T, hd] with a prefix
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

  /** Prefix tuning: this layer reads its keys and values from columns {@code (2·layer + kv)·H} of {@code prefix}. */
  public void setPrefix(Param prefix, int layer) {
    this.prefix = prefix;
    this.prefixLayer = layer;
  }

  public boolean hasTrainablePrefix() { return prefix != null && prefix.isTrainable(); }

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
    if (prefix != null) {
      k = Nd4j.concat(2, prefixHeads(0), k);
      v = Nd4j.concat(2, prefixHeads(1), v);
      maskBias = Nd4j.concat(1, Nd4j.zeros(maskBias.dataType(), batch, prefix.shape[0]), maskBias);
    }
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
    long keys = k.size(2);                                                     // nv + T
    INDArray p2 = probs.reshape('c', rows, keys);
    INDArray dp2 = dprobs.reshape('c', rows, keys);
    INDArray rowDot = dp2.mul(p2).sum(true, 1);
    INDArray dscores = dp2.subiColumnVector(rowDot).muli(p2).reshape('c', batch, heads, seq, keys);
    dscores.muli(1.0 / Math.sqrt(q.size(3)));
    INDArray dq = Nd4j.matmul(dscores, k);                                     // [B, nh, T, hd]
    INDArray dk = Nd4j.matmul(dscores, q, true, false, false);                 // [B, nh, nv+T, hd]
    if (prefix != null) {
      dk = prefixBackward(dk, 0);
      dv = prefixBackward(dv, 1);
    }
    q = k = v = probs = null;
    INDArray dx = query.backward(mergeHeads(dq), needInputGrad);
    INDArray dxk = key.backward(mergeHeads(dk), needInputGrad);
    INDArray dxv = value.backward(mergeHeads(dv), needInputGrad);
    if (!needInputGrad) return null;
    return dx.addi(dxk).addi(dxv);
  }

  /** This layer's prefix keys (kv 0) or values (kv 1) as [B, nh, nv, hd] (the same for every row). */
  private INDArray prefixHeads(int kv) {
    long nv = prefix.shape[0], h = hiddenSize(), hd = h / heads;
    long from = (2L * prefixLayer + kv) * h;
    INDArray cols = prefix.value().get(NDArrayIndex.all(), NDArrayIndex.interval(from, from + h)); // [nv, H]
    INDArray one = cols.dup('c').reshape('c', nv, heads, hd).permute(1, 0, 2);                    // [nh, nv, hd]
    return one.reshape(1, heads, nv, hd).broadcast(batch, heads, nv, hd).dup('c');
  }

  /** Splits d[keys] [B, nh, nv+T, hd] into the prefix part (summed over rows into the shared gradient) and the rest. */
  private INDArray prefixBackward(INDArray d, int kv) {
    long nv = prefix.shape[0], h = hiddenSize(), keys = d.size(2);
    if (prefix.isTrainable()) {
      INDArray dPrefix = d.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(0, nv), NDArrayIndex.all())
          .sum(0).permute(1, 0, 2).dup('c').reshape('c', nv, h);                                   // [nv, H]
      long from = (2L * prefixLayer + kv) * h;
      prefix.grad().get(NDArrayIndex.all(), NDArrayIndex.interval(from, from + h)).addi(dPrefix);
    }
    return d.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(nv, keys), NDArrayIndex.all()).dup('c');
  }

  private long hiddenSize() { return heads * q.size(3); }

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
