package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
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
  /** Query rows per causal block: a block's queries see keys up to its last row only (about 3/8 of T² skipped at T = 256). */
  static final int BLOCK = 64;
  private int blockRows = BLOCK;

  private Heads q, k, v;             // [B*T, heads·hd], [B*T, kvh·hd] ×2 (after RoPE), or column ranges of c_attn
  private INDArray pk, pv;            // prefix tuning's keys and values [kvh, nv, hd] in the compute type (null: none)
  private INDArray probs;             // [B, kvh, g*T, K], K = nv + T keys

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

  /** Tests: query rows per causal block (any size gives the same result; small ones exercise the blocking). */
  void setCausalBlock(int rows) {
    if (rows < 1) throw new IllegalArgumentException("causal block must be >= 1 row, got " + rows);
    this.blockRows = rows;
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
    int b = mask.batch(), t = mask.seq(), g = heads / kvHeads, nv = prefixTokens(), keys = nv + t;
    if (mask.prefix() != nv)
      throw new IllegalStateException("the mask has " + mask.prefix() + " prefix keys, this layer " + nv);
    projectHeads(x, tables);
    pk = nv > 0 ? prefixHeads(0).castTo(x.dataType()) : null;
    pv = nv > 0 ? prefixHeads(1).castTo(x.dataType()) : null;
    // = [B, heads, T, K]. The products below skip the blocks above the diagonal. Single precision: the softmax reads
    // each row's visible span only, writes every entry and returns these very scores as the probabilities kept for
    // backward, so they come uninitialised from the step's arena (reused every step: no memset, no fresh pages).
    // The double reference reads whole rows (zeros above the diagonal) into new probabilities: the scores, the
    // largest temporary, live outside any arena and are closed as soon as the softmax has read them.
    long[] shape = {b, kvHeads, (long) g * t, keys};
    INDArray scores = x.dataType() == DataType.FLOAT ? Nd4j.createUninitialized(DataType.FLOAT, shape, 'c')
        : outsideWorkspaces(() -> Nd4j.zeros(x.dataType(), shape));
    double scale = 1.0 / Math.sqrt(headDim);
    INDArray ctx = Nd4j.createUninitialized(x.dataType(), new long[] {(long) b * t, (long) heads * headDim}, 'c');
    Heads ctxH = new Heads(ctx, 0, heads * headDim);
    Parallel.forEach(b * heads, i -> {
      int bi = i / heads, h = i % heads;
      for (int r0 = 0; r0 < t; r0 += blockRows) {
        int r1 = Math.min(t, r0 + blockRows);
        if (nv > 0) Gemm.gemm(rows(q, bi, h, r0, r1), false, prefixRows(pk, h / g), true, block(scores, bi, h, r0, r1, 0, nv), scale, 0.0);
        Gemm.gemm(rows(q, bi, h, r0, r1), false, rows(k, bi, h / g, 0, r1), true, block(scores, bi, h, r0, r1, nv, r1), scale, 0.0);
      }
    });
    INDArray p = AttentionSoftmax.forward(scores, mask, g);
    if (p.data().address() != scores.data().address()) scores.close();
    probs = p;
    Parallel.forEach(b * heads, i -> {
      int bi = i / heads, h = i % heads;
      for (int r0 = 0; r0 < t; r0 += blockRows) {
        int r1 = Math.min(t, r0 + blockRows);
        if (nv > 0) Gemm.gemm(block(p, bi, h, r0, r1, 0, nv), false, prefixRows(pv, h / g), false, rows(ctxH, bi, h, r0, r1), 1.0, 0.0);
        Gemm.gemm(block(p, bi, h, r0, r1, nv, r1), false, rows(v, bi, h / g, 0, r1), false, rows(ctxH, bi, h, r0, r1), 1.0,
            nv > 0 ? 1.0 : 0.0);
      }
    });
    return output.forward(ctx);
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

  /**
   * Where each head's rows live: head {@code h} of batch row {@code b} is the {@code T × hd} matrix at column
   * {@code col + h·hd} of rows {@code b·T ..} of {@code array} (row stride {@code ld}); GPT-2's q, k and v are
   * column ranges of the one c_attn output.
   */
  private record Heads(INDArray array, int col, int ld) {}

  /** Rows {@code r0..r1-1} (positions) of head {@code h} of batch row {@code b}: a {@code (r1-r0) × hd} matrix. */
  private Gemm.Mat rows(Heads x, int b, int h, int r0, int r1) {
    int t = mask.seq();
    return new Gemm.Mat(x.array(), ((long) b * t + r0) * x.ld() + x.col() + (long) h * headDim, r1 - r0, headDim, x.ld());
  }

  /**
   * Query rows {@code r0..r1-1} × key columns {@code c0..c0+cols-1} of the {@code T × K} scores/probabilities of query
   * head {@code h}, batch row {@code b}, in {@code [B, kvh, g·T, K]} ({@code K = nv + T}: prefix keys first). Own keys
   * are taken up to {@code r1} only: the causal mask hides every later key.
   */
  private Gemm.Mat block(INDArray s, int b, int h, int r0, int r1, int c0, int cols) {
    int t = mask.seq(), keys = prefixTokens() + t;
    return new Gemm.Mat(s, (((long) b * heads + h) * t + r0) * keys + c0, r1 - r0, cols, keys);
  }

  /** Prefix keys or values of key/value head {@code kv} in {@code p [kvh, nv, hd]}: an {@code nv × hd} matrix. */
  private Gemm.Mat prefixRows(INDArray p, int kv) {
    int nv = (int) p.size(1);
    return new Gemm.Mat(p, (long) kv * nv * headDim, nv, headDim, headDim);
  }

  /** This layer's prefix keys (kv 0) or values (kv 1), {@code [kvh, nv, hd]} (contiguous). */
  private INDArray prefixHeads(int kv) {
    long nv = prefix.shape[0], w = (long) kvHeads * headDim, from = (2L * prefixLayer + kv) * w;
    INDArray cols = prefix.value().get(NDArrayIndex.all(), NDArrayIndex.interval(from, from + w));  // [nv, kvh·hd]
    return cols.dup('c').reshape('c', nv, kvHeads, headDim).permute(1, 0, 2).dup('c');
  }

  /** Adds {@code d [kvh, nv, hd]} to the prefix gradient's columns of this layer's keys (kv 0) or values (kv 1). */
  private void addPrefixGrad(INDArray d, int kv) {
    long nv = prefix.shape[0], w = (long) kvHeads * headDim, from = (2L * prefixLayer + kv) * w;
    INDArray flat = d.permute(1, 0, 2).dup('c').reshape('c', nv, w);                         // [nv, kvh·hd]
    prefix.grad().get(NDArrayIndex.all(), NDArrayIndex.interval(from, from + w)).addi(flat.castTo(prefix.grad().dataType()));
  }

  /** One visit of {@link #kvBlocks}: rows r0..r1 of query head h (key/value head kv) in batch row bi. */
  private interface KvBlock { void at(int bi, int kv, int h, int r0, int r1, double beta); }

  /**
   * One task per (batch row, key/value head): it visits its group's query heads and their row blocks in a fixed
   * order, so sums into dk/dv are deterministic. The last block (r1 = T) covers every key row, so it goes first and
   * its product overwrites ({@code beta} 0); every later one accumulates ({@code beta} 1).
   */
  private void kvBlocks(int b, int t, int g, KvBlock visit) {
    int last = (t - 1) / blockRows * blockRows;
    Parallel.forEach(b * kvHeads, i -> {
      int bi = i / kvHeads, kv = i % kvHeads;
      for (int h = kv * g; h < (kv + 1) * g; h++) {
        for (int r0 = last; r0 >= 0; r0 -= blockRows) {
          visit.at(bi, kv, h, r0, Math.min(t, r0 + blockRows), h == kv * g && r0 == last ? 0.0 : 1.0);
        }
      }
    });
  }

  private static INDArray outsideWorkspaces(java.util.function.Supplier<INDArray> make) {
    try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
      return make.get();
    }
  }

  /** Sets {@link #q}, {@link #k}, {@link #v} for training: no per-head copies, GPT-2's read in place from c_attn. */
  private void projectHeads(INDArray x, Rope.Tables tables) {
    int w = heads * headDim, kw = kvHeads * headDim;
    if (fused != null) {
      INDArray qkv = contiguous(fused.forward(x));
      q = new Heads(qkv, 0, 3 * w);
      k = new Heads(qkv, w, 3 * w);
      v = new Heads(qkv, 2 * w, 3 * w);
      return;
    }
    INDArray qx = query.forward(x), kx = key.forward(x), vx = value.forward(x);
    if (rope != null) {
      qx = rope.rotate(qx, tables, false);
      kx = rope.rotate(kx, tables, false);
    }
    q = new Heads(contiguous(qx), 0, w);
    k = new Heads(contiguous(kx), 0, kw);
    v = new Heads(contiguous(vx), 0, kw);
  }

  private static INDArray contiguous(INDArray a) {
    return a.ordering() == 'c' && a.elementWiseStride() == 1 && a.stride(0) == a.size(1) ? a : a.dup('c');
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
    int b = mask.batch(), t = mask.seq(), g = heads / kvHeads, w = heads * headDim, kw = kvHeads * headDim;
    long n = (long) b * t;
    Heads dctx = new Heads(contiguous(output.backward(dy, true)), 0, w);
    // dq, dk, dv land where the forward read q, k, v: side by side in one array for GPT-2's c_attn
    INDArray dqkv = fused != null ? Nd4j.createUninitialized(dy.dataType(), new long[] {n, 3L * w}, 'c') : null;
    Heads dq = fused != null ? new Heads(dqkv, 0, 3 * w) : new Heads(Nd4j.createUninitialized(dy.dataType(), new long[] {n, w}, 'c'), 0, w);
    Heads dk = fused != null ? new Heads(dqkv, w, 3 * w) : new Heads(Nd4j.createUninitialized(dy.dataType(), new long[] {n, kw}, 'c'), 0, kw);
    Heads dv = fused != null ? new Heads(dqkv, 2 * w, 3 * w) : new Heads(Nd4j.createUninitialized(dy.dataType(), new long[] {n, kw}, 'c'), 0, kw);
    int nv = prefixTokens();
    // above the diagonal: never written, p is 0 there; outside any arena and closed as soon as it is used
    INDArray dprobs = outsideWorkspaces(() -> Nd4j.zeros(dy.dataType(), probs.shape()));
    kvBlocks(b, t, g, (bi, kv, h, r0, r1, beta) -> {
      if (nv > 0) Gemm.gemm(rows(dctx, bi, h, r0, r1), false, prefixRows(pv, kv), true, block(dprobs, bi, h, r0, r1, 0, nv), 1.0, 0.0);
      Gemm.gemm(rows(dctx, bi, h, r0, r1), false, rows(v, bi, kv, 0, r1), true, block(dprobs, bi, h, r0, r1, nv, r1), 1.0, 0.0);
      Gemm.gemm(block(probs, bi, h, r0, r1, nv, r1), true, rows(dctx, bi, h, r0, r1), false, rows(dv, bi, kv, 0, r1), 1.0, beta);
    });
    INDArray dscores = outsideWorkspaces(() -> AttentionSoftmax.backward(probs, dprobs, 1.0 / Math.sqrt(headDim), t));
    boolean shared = dscores.data().address() == dprobs.data().address();   // the double path writes in place
    if (!shared) dprobs.close();
    kvBlocks(b, t, g, (bi, kv, h, r0, r1, beta) -> {
      if (nv > 0) Gemm.gemm(block(dscores, bi, h, r0, r1, 0, nv), false, prefixRows(pk, kv), false, rows(dq, bi, h, r0, r1), 1.0, 0.0);
      Gemm.gemm(block(dscores, bi, h, r0, r1, nv, r1), false, rows(k, bi, kv, 0, r1), false, rows(dq, bi, h, r0, r1), 1.0,
          nv > 0 ? 1.0 : 0.0);
      Gemm.gemm(block(dscores, bi, h, r0, r1, nv, r1), true, rows(q, bi, h, r0, r1), false, rows(dk, bi, kv, 0, r1), 1.0, beta);
    });
    if (nv > 0 && prefix.isTrainable()) {
      // the prefix's keys and values are shared by every batch row: one task per key/value head sums over rows,
      // the group's query heads and the row blocks in a fixed order
      INDArray dpk = Nd4j.zeros(dy.dataType(), kvHeads, nv, headDim), dpv = Nd4j.zeros(dy.dataType(), kvHeads, nv, headDim);
      Parallel.forEach(kvHeads, kv -> {
        for (int bi = 0; bi < b; bi++) {
          for (int h = kv * g; h < (kv + 1) * g; h++) {
            for (int r0 = 0; r0 < t; r0 += blockRows) {
              int r1 = Math.min(t, r0 + blockRows);
              Gemm.gemm(block(dscores, bi, h, r0, r1, 0, nv), true, rows(q, bi, h, r0, r1), false, prefixRows(dpk, kv), 1.0, 1.0);
              Gemm.gemm(block(probs, bi, h, r0, r1, 0, nv), true, rows(dctx, bi, h, r0, r1), false, prefixRows(dpv, kv), 1.0, 1.0);
            }
          }
        }
      });
      addPrefixGrad(dpk, 0);
      addPrefixGrad(dpv, 1);
    }
    dscores.close();
    q = k = v = null;
    pk = pv = null;
    probs = null;
    mask = null;
    Rope.Tables rot = tables;
    tables = null;
    if (fused != null) return fused.backward(dqkv, needInputGrad);
    INDArray dqx = dq.array(), dkx = dk.array();
    if (rope != null) {
      dqx = rope.rotate(dqx, rot, true);
      dkx = rope.rotate(dkx, rot, true);
    }
    INDArray dx = query.backward(dqx, needInputGrad);
    INDArray dxk = key.backward(dkx, needInputGrad);
    INDArray dxv = value.backward(dv.array(), needInputGrad);
    if (!needInputGrad) return null;
    return NativeFloats.addInPlace(NativeFloats.addInPlace(dx, dxk), dxv);
  }
}
