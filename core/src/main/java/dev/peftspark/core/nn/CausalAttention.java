package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.List;
import java.util.function.UnaryOperator;

/**
 * Causal multi-head attention with grouped-query heads (LLaMA, Mistral, Qwen2; GPT-2 with {@code kvHeads = heads}
 * and no rotary embedding): {@code x [B*T, H] -> [B*T, H]}, output projection included. Query head {@code h}
 * reads key/value head {@code h / (heads / kvHeads)} (Hugging Face's {@code repeat_kv}); the group's queries are
 * stacked so that each key/value head is used by one batched product, never copied.
 */
public final class CausalAttention {
  private LinearLayer query, key, value, output;
  private LinearLayer fused;          // GPT-2's c_attn: [q | k | v] from one projection; then query/key/value are null
  private final int heads, kvHeads, headDim;
  private final Rope rope;            // null: no rotary embedding (GPT-2)
  private Param prefix;               // prefix tuning: [nv, L·2·kvh·hd] shared by all layers (null: none)
  private int prefixLayer;            // this layer's index into it
  private CausalMask mask;
  private Rope.Tables tables;
  private INDArray q, k, v;           // [B, kvh, g*T, hd], [B, kvh, K, hd], [B, kvh, K, hd] (after RoPE; K = nv + T)
  private INDArray probs;             // [B, kvh, g*T, K]

  public CausalAttention(LinearLayer query, LinearLayer key, LinearLayer value, LinearLayer output,
                         int heads, int kvHeads, int headDim, Rope rope) {
    if (heads % kvHeads != 0) throw new IllegalArgumentException(heads + " attention heads are not a multiple of " + kvHeads + " key/value heads");
    if (query.outFeatures() != heads * headDim || key.outFeatures() != kvHeads * headDim || value.outFeatures() != kvHeads * headDim)
      throw new IllegalArgumentException("projections " + query.outFeatures() + "/" + key.outFeatures() + "/" + value.outFeatures()
          + " do not match " + heads + " query and " + kvHeads + " key/value heads of " + headDim);
    this.query = query;
    this.key = key;
    this.value = value;
    this.output = output;
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.rope = rope;
  }

  /**
   * GPT-2 style: one projection {@code fused} yields {@code [q | k | v]} side by side ({@code heads·hd} columns
   * each), no rotary embedding.
   */
  public static CausalAttention fused(LinearLayer fused, LinearLayer output, int heads, int headDim) {
    if (fused.outFeatures() != 3 * heads * headDim)
      throw new IllegalArgumentException(fused.name() + ": " + fused.outFeatures() + " outputs, expected 3 × " + heads + " × " + headDim);
    CausalAttention a = new CausalAttention(heads, headDim, output);
    a.fused = fused;
    return a;
  }

  private CausalAttention(int heads, int headDim, LinearLayer output) {
    this.heads = heads;
    this.kvHeads = heads;
    this.headDim = headDim;
    this.output = output;
    this.rope = null;
  }

  public LinearLayer fusedQkv() { return fused; }
  public LinearLayer query() { return query; }
  public LinearLayer key() { return key; }
  public LinearLayer value() { return value; }
  public LinearLayer output() { return output; }

  public void mapLinears(UnaryOperator<LinearLayer> f) {
    if (fused != null) {
      fused = f.apply(fused);
      output = f.apply(output);
      return;
    }
    query = f.apply(query);
    key = f.apply(key);
    value = f.apply(value);
    output = f.apply(output);
  }

  public List<LinearLayer> linears() { return fused != null ? List.of(fused, output) : List.of(query, key, value, output); }

  /**
   * Prefix tuning: this layer's {@code nv} virtual keys and values come before its own, visible to every query, from
   * columns {@code (2·layer + kv)·kvh·hd} of {@code prefix} (kv 0 keys, 1 values; heads, then head dims: PEFT's view
   * {@code [nv, 2L, kvh, hd]} of {@code past_key_values}). Keys are used as stored, not rotated: they are cache
   * entries, and Hugging Face caches keys after RoPE. Null removes it.
   */
  public void setPrefix(Param prefix, int layer) {
    if (prefix != null && (prefix.shape.length != 2 || prefix.shape[1] < (2L * layer + 2) * kvHeads * headDim))
      throw new IllegalArgumentException("prefix " + java.util.Arrays.toString(prefix.shape) + " has no columns for layer " + layer
          + " (" + kvHeads + " key/value heads of " + headDim + ")");
    this.prefix = prefix;
    this.prefixLayer = layer;
  }

  /** Prefix tuning's virtual keys per example (0 without). */
  public int prefixTokens() { return prefix == null ? 0 : (int) prefix.shape[0]; }

  /** Puts this layer's prefix keys and values first in an empty {@code cache} (generation with prefix tuning). */
  public void prefill(AttentionCache cache) {
    if (prefix == null) return;
    if (cache.length() != 0) throw new IllegalStateException("the prefix goes into an empty cache; this one holds " + cache.length());
    cache.append(prefixHeads(0), prefixHeads(1));
  }

  /** @param tables the rotary tables for {@code mask.positions()} (ignored, may be null, without RoPE) */
  public INDArray forward(INDArray x, CausalMask mask, Rope.Tables tables) {
    this.mask = mask;
    this.tables = tables;
    int b = mask.batch(), t = mask.seq(), g = heads / kvHeads;
    INDArray[] qkv = project(x, tables);
    INDArray qx = qkv[0], kx = qkv[1], vx = qkv[2];
    if (mask.prefix() != prefixTokens())
      throw new IllegalStateException("the mask has " + mask.prefix() + " prefix keys, this layer " + prefixTokens());
    q = splitHeads(qx, heads).reshape('c', b, kvHeads, (long) g * t, headDim);
    k = withPrefix(splitHeads(kx, kvHeads), 0, b);
    v = withPrefix(splitHeads(vx, kvHeads), 1, b);
    long keys = k.size(2);
    INDArray scores = outsideWorkspaces(() -> Nd4j.createUninitialized(q.dataType(), b, kvHeads, (long) g * t, keys));
    double scale = 1.0 / Math.sqrt(headDim);
    perHead(q, k, scores, false, true, scale);                                              // [B, kvh, g*T, T]
    probs = AttentionSoftmax.forward(scores, mask, g);
    if (probs.data().address() != scores.data().address()) scores.close();   // the largest temporary goes now, not with the arena or GC
    INDArray ctx = Nd4j.createUninitialized(q.dataType(), b, kvHeads, (long) g * t, headDim);
    perHead(probs, v, ctx, false, false, 1.0);                                              // [B, kvh, g*T, hd]
    return output.forward(mergeHeads(ctx.reshape('c', b, heads, t, headDim)));
  }

  /**
   * The incremental (inference) path, batch 1: attends {@code n} new tokens {@code x [n, H]} at positions
   * {@code cache.length() .. + n - 1} to every cached token and to each other causally, appending their keys and
   * values to {@code cache}. Keeps nothing for backward (the linears it calls replace what they kept: call it
   * outside a training step).
   *
   * @param tables        rotary tables for those {@code n} positions (null without RoPE)
   * @param slidingWindow keys more than this many positions back are masked; 0 for none
   */
  public INDArray step(INDArray x, AttentionCache cache, Rope.Tables tables, int slidingWindow) {
    int n = (int) x.size(0), past = cache.length(), g = heads / kvHeads;
    INDArray[] qkv = project(x, tables);
    INDArray qx = qkv[0], kx = qkv[1], vx = qkv[2];
    INDArray qh = qx.reshape('c', n, heads, headDim).permute(1, 0, 2).dup('c').reshape('c', kvHeads, (long) g * n, headDim);
    cache.append(kx.reshape('c', n, kvHeads, headDim).permute(1, 0, 2).dup('c'),
        vx.reshape('c', n, kvHeads, headDim).permute(1, 0, 2).dup('c'));
    int total = past + n;
    INDArray scores = Nd4j.matmul(qh, cache.keys(), false, true, false).muli(1.0 / Math.sqrt(headDim));   // [kvh, g*n, L]
    double[] bias = new double[n * total];
    for (int i = 0; i < n; i++) {
      int at = past + i;
      for (int j = 0; j < total; j++) {
        boolean allowed = j <= at && (slidingWindow <= 0 || j > at - slidingWindow);
        bias[i * total + j] = allowed ? 0 : CausalMask.MASKED;
      }
    }
    INDArray s3 = scores.reshape('c', (long) heads, n, total);
    INDArray b2 = Nd4j.createFromArray(bias).reshape(n, total).castTo(scores.dataType());
    Nd4j.getExecutioner().exec(new BroadcastAddOp(s3, b2, s3, 1, 2));
    INDArray p = Nd4j.exec(new SoftMax(scores, scores, -1))[0];
    INDArray ctx = Nd4j.matmul(p, cache.values());                                                       // [kvh, g*n, hd]
    INDArray merged = ctx.reshape('c', heads, n, headDim).permute(1, 0, 2).dup('c').reshape('c', n, (long) heads * headDim);
    return output.forward(merged);
  }

  /** Queries, keys and values {@code [n, heads·hd]} of {@code x}, queries and keys rotated (training and decoding alike). */
  private INDArray[] project(INDArray x, Rope.Tables tables) {
    INDArray qx, kx, vx;
    if (fused != null) {
      INDArray qkv = fused.forward(x);
      long w = (long) heads * headDim;
      qx = qkv.get(NDArrayIndex.all(), NDArrayIndex.interval(0, w)).dup('c');
      kx = qkv.get(NDArrayIndex.all(), NDArrayIndex.interval(w, 2 * w)).dup('c');
      vx = qkv.get(NDArrayIndex.all(), NDArrayIndex.interval(2 * w, 3 * w)).dup('c');
    } else {
      qx = query.forward(x);
      kx = key.forward(x);
      vx = value.forward(x);
    }
    if (rope != null) {
      qx = rope.rotate(qx, tables, false);
      kx = rope.rotate(kx, tables, false);
    }
    return new INDArray[] {qx, kx, vx};
  }

  /** dL/dx given dL/dy, or null when {@code needInputGrad} is false (nothing below needs it). */
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    int b = mask.batch(), t = mask.seq(), g = heads / kvHeads;
    long keys = k.size(2);
    INDArray dctx = splitHeads(output.backward(dy, true), heads).reshape('c', b, kvHeads, (long) g * t, headDim);
    // the [.., T, K] temporaries live outside any arena and are closed as soon as they are used
    INDArray dprobs = outsideWorkspaces(() -> Nd4j.createUninitialized(dctx.dataType(), b, kvHeads, (long) g * t, keys));
    perHead(dctx, v, dprobs, false, true, 1.0);                               // [B, kvh, g*T, K]
    INDArray dv = Nd4j.createUninitialized(dctx.dataType(), b, kvHeads, keys, headDim);
    perHead(probs, dctx, dv, true, false, 1.0);                               // [B, kvh, K, hd], summed over the group
    INDArray dscores = outsideWorkspaces(() -> AttentionSoftmax.backward(probs, dprobs, 1.0 / Math.sqrt(headDim)));
    boolean shared = dscores.data().address() == dprobs.data().address();                        // the double path works in place
    if (!shared) dprobs.close();
    INDArray dq = Nd4j.createUninitialized(dctx.dataType(), b, kvHeads, (long) g * t, headDim);
    perHead(dscores, k, dq, false, false, 1.0);                               // [B, kvh, g*T, hd]
    INDArray dk = Nd4j.createUninitialized(dctx.dataType(), b, kvHeads, keys, headDim);
    perHead(dscores, q, dk, true, false, 1.0);                                // [B, kvh, K, hd]
    if (shared) dprobs.close(); else dscores.close();
    INDArray dqx = mergeHeads(dq.reshape('c', b, heads, t, headDim));
    INDArray dkx = mergeHeads(prefixBackward(dk, 0)), dvx = mergeHeads(prefixBackward(dv, 1));
    if (rope != null) {
      dqx = rope.rotate(dqx, tables, true);
      dkx = rope.rotate(dkx, tables, true);
    }
    q = k = v = probs = null;
    mask = null;
    tables = null;
    if (fused != null) return fused.backward(Nd4j.hstack(dqx, dkx, dvx), needInputGrad);
    INDArray dx = query.backward(dqx, needInputGrad);
    INDArray dxk = key.backward(dkx, needInputGrad);
    INDArray dxv = value.backward(dvx, needInputGrad);
    if (!needInputGrad) return null;
    return dx.addi(dxk).addi(dxv);
  }

  /** {@code x [B, kvh, T, hd]} with this layer's prefix keys (kv 0) or values (kv 1) before it; {@code x} itself without. */
  private INDArray withPrefix(INDArray x, int kv, int b) {
    if (prefix == null) return x;
    INDArray p = prefixHeads(kv);                                            // [kvh, nv, hd]
    long nv = p.size(1);
    INDArray rows = p.reshape('c', 1, kvHeads, nv, headDim).broadcast(b, kvHeads, nv, headDim);
    return Nd4j.concat(2, rows.castTo(x.dataType()), x).dup('c');
  }

  /** This layer's prefix keys (kv 0) or values (kv 1), {@code [kvh, nv, hd]} (contiguous). */
  private INDArray prefixHeads(int kv) {
    long nv = prefix.shape[0], w = (long) kvHeads * headDim, from = (2L * prefixLayer + kv) * w;
    INDArray cols = prefix.value().get(NDArrayIndex.all(), NDArrayIndex.interval(from, from + w));  // [nv, kvh·hd]
    return cols.dup('c').reshape('c', nv, kvHeads, headDim).permute(1, 0, 2).dup('c');
  }

  /**
   * Splits d(keys or values) {@code [B, kvh, nv+T, hd]}: the prefix part, summed over the batch, accumulates into
   * the prefix gradient (when trainable); the sequence's own part is returned. Without a prefix, {@code d} itself.
   */
  private INDArray prefixBackward(INDArray d, int kv) {
    if (prefix == null) return d;
    long nv = prefix.shape[0], keys = d.size(2), w = (long) kvHeads * headDim;
    if (prefix.isTrainable()) {
      INDArray dp = d.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(0, nv), NDArrayIndex.all())
          .sum(0).permute(1, 0, 2).dup('c').reshape('c', nv, w);                                   // [nv, kvh·hd]
      long from = (2L * prefixLayer + kv) * w;
      prefix.grad().get(NDArrayIndex.all(), NDArrayIndex.interval(from, from + w)).addi(dp);
    }
    return d.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(nv, keys), NDArrayIndex.all()).dup('c');
  }

  private static INDArray outsideWorkspaces(java.util.function.Supplier<INDArray> make) {
    try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
      return make.get();
    }
  }

  /**
   * {@code c[b,h] = alpha · op(a[b,h]) · op(x[b,h])} for every batch row and key/value head, one BLAS GEMM on 2-D
   * views each (libnd4j's batched matmul of rank-4 arrays does not reach BLAS and was a fifth of a LLaMA step).
   */
  private static void perHead(INDArray a, INDArray x, INDArray c, boolean transA, boolean transX, double alpha) {
    for (long bi = 0; bi < a.size(0); bi++) {
      for (long h = 0; h < a.size(1); h++) {
        Nd4j.gemm(matrix(a, bi, h), matrix(x, bi, h), matrix(c, bi, h), transA, transX, alpha, 0.0);
      }
    }
  }

  /** The [d2, d3] matrix at [b, h] of a c-contiguous rank-4 array, as a view. */
  private static INDArray matrix(INDArray a, long b, long h) {
    long rows = a.size(2), cols = a.size(3);
    long offset = a.offset() + (b * a.size(1) + h) * rows * cols;
    return Nd4j.create(a.data(), new long[] {rows, cols}, new long[] {cols, 1}, offset, 'c', a.dataType());
  }

  /** [B*T, n*hd] -> [B, n, T, hd] (contiguous). */
  private INDArray splitHeads(INDArray x, int n) {
    return x.reshape('c', mask.batch(), mask.seq(), n, headDim).permute(0, 2, 1, 3).dup('c');
  }

  /** [B, n, T, hd] -> [B*T, n*hd] (contiguous). */
  private INDArray mergeHeads(INDArray x) {
    return x.permute(0, 2, 1, 3).dup('c').reshape('c', (long) mask.batch() * mask.seq(), x.size(1) * headDim);
  }
}
