package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.FloatBuffer;

/**
 * Masked softmax over attention scores {@code [B, kvh, g·T, K]} (the {@code g} query heads of a key/value head
 * stacked; {@code K = T} keys, more with prefix tuning's virtual keys), forward and backward. Single precision
 * runs short vectorisable Java loops per row (bias add and max, shift, bulk exp, sum, scale; masked entries are
 * exactly 0, as exp underflows to in the reference); double precision is the reference made of
 * ND4J ops (bias add, softmax op), which the gradient checks run and {@code AttentionSoftmaxTest} holds the fast
 * path to.
 */
final class AttentionSoftmax {
  private AttentionSoftmax() {}

  /**
   * Probabilities for {@code scores} (already scaled): {@code softmax(scores + mask.bias)} per row. Both paths may
   * write them over {@code scores} (single precision always does).
   */
  static INDArray forward(INDArray scores, CausalMask mask, int group) {
    return scores.dataType() == DataType.FLOAT ? forwardFloat(scores, mask) : reference(scores, mask, group);
  }

  /**
   * dL/dscores·{@code scale} from the probabilities and dL/dprobs: {@code p ∘ (dp − Σ dp∘p) · scale} per row, written
   * over {@code dprobs} (both paths); {@code seq} is the mask's rows per example.
   */
  static INDArray backward(INDArray probs, INDArray dprobs, double scale, int seq) {
    long t = probs.size(3), rows = probs.length() / t;
    if (probs.dataType() != DataType.FLOAT) {
      INDArray p2 = probs.reshape('c', rows, t);
      INDArray dp2 = dprobs.reshape('c', rows, t);
      INDArray rowDot = dp2.mul(p2).sum(true, 1);
      return dp2.subiColumnVector(rowDot).muli(p2).muli(scale).reshape('c', probs.shape());
    }
    // in place on the native dprobs, a row at a time through per-task arrays: no [B, heads, T, K] float[] copies
    // (humongous G1 allocations: 3 MiB at GPT-2 small, 8 MiB at the LLaMA bench shape)
    FloatBuffer pb = NativeFloats.values(probs), db = NativeFloats.values(dprobs);
    int n = (int) t;
    float s = (float) scale;
    Parallel.forRange((int) rows, (from, to) -> {
      float[] p = new float[n], d = new float[n], zeros = new float[n];
      for (int r = from; r < to; r++) {
        int o = r * n, span = span(n, seq, r);
        pb.get(o, p, 0, span);
        db.get(o, d, 0, span);
        float dot = dot(d, p, span);
        for (int j = 0; j < span; j++) d[j] = p[j] * (d[j] - dot) * s;
        db.put(o, d, 0, span);
        db.put(o + span, zeros, 0, n - span);       // p is 0 there
      }
    });
    return dprobs;
  }

  /**
   * Keys {@code [0, span)} of row {@code r} can be visible: a query never sees a key after itself
   * ({@link CausalMask}), so every later entry of its row is exactly 0 and is written as such, not computed.
   * Rows are query positions {@code 0..seq-1} over and over; the prefix keys ({@code keys - seq}) come first.
   */
  static int span(int keys, int seq, int r) { return keys - seq + r % seq + 1; }

  /** Σ d∘p as four interleaved float sums (one running sum waits on each addition's latency). */
  private static float dot(float[] d, float[] p, int n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int j = 0;
    for (; j + 3 < n; j += 4) {
      s0 += d[j] * p[j];
      s1 += d[j + 1] * p[j + 1];
      s2 += d[j + 2] * p[j + 2];
      s3 += d[j + 3] * p[j + 3];
    }
    for (; j < n; j++) s0 += d[j] * p[j];
    return (s0 + s1) + (s2 + s3);
  }

  static INDArray reference(INDArray scores, CausalMask mask, int group) {
    int b = mask.batch(), t = mask.seq();
    long heads = scores.size(1) * group;
    INDArray s4 = scores.reshape('c', b, heads, t, mask.keys());
    Nd4j.getExecutioner().exec(new BroadcastAddOp(s4, mask.bias(), s4, 0, 2, 3));
    return Nd4j.exec(new SoftMax(scores, scores, -1))[0];
  }

  /**
   * In place on the native scores (returned as the probabilities) through per-task arrays. Each row's visible span
   * is shifted by its maximum, then the spans of several rows are packed end to end so that one bulk exp covers
   * them: a causal row is 128 keys on average, too short for C2's vectorised loop body on its own. A masked entry
   * inside a span ({@link CausalMask#MASKED}, −1e9: padding, another packed document) leaves x + b − max far below
   * exp's underflow, so it comes out exactly 0, as in the reference.
   */
  private static INDArray forwardFloat(INDArray scores, CausalMask mask) {
    int t = mask.seq(), keys = mask.keys();
    FloatBuffer sb = NativeFloats.values(scores);
    float[] bias = Floats.read(mask.bias());                               // [B, T, K]: small
    int rows = (int) (scores.length() / keys), rowsPerBatch = (int) (rows / mask.batch());   // kvh · g · T
    Parallel.forRange(rows, (from, to) -> {
      float[] packed = new float[Math.max(PACKED, keys)], x = new float[keys], b = new float[keys], zeros = new float[keys];
      for (int r0 = from, r1; r0 < to; r0 = r1) {
        int used = 0;
        for (r1 = r0; r1 < to && (r1 == r0 || used + span(keys, t, r1) <= packed.length); r1++) {
          int span = span(keys, t, r1), bo = ((r1 / rowsPerBatch) * t + r1 % t) * keys;   // bias row [b, i] of this query
          // the row and its bias copied first, so that every loop indexes its arrays alike and vectorises
          sb.get(r1 * keys, x, 0, span);
          System.arraycopy(bias, bo, b, 0, span);
          shiftByMax(x, b, span);
          System.arraycopy(x, 0, packed, used, span);
          used += span;
        }
        Floats.exp(packed, 0, used);
        for (int r = r0, at = 0; r < r1; r++) {
          int span = span(keys, t, r);
          float inv = (float) (1 / Floats.sum(packed, at, at + span));
          for (int j = at; j < at + span; j++) packed[j] *= inv;
          sb.put(r * keys, packed, at, span);
          sb.put(r * keys + span, zeros, 0, keys - span);                // masked: exactly 0, as exp gives
          at += span;
        }
      }
    });
    return scores;
  }

  /** Floats packed per bulk exp: Floats' own block, so one call is one pass. */
  private static final int PACKED = 2048;

  /** {@code x = x + b − max(x + b)} over the first {@code n} entries. */
  private static void shiftByMax(float[] x, float[] b, int n) {
    float max = Float.NEGATIVE_INFINITY;
    for (int j = 0; j < n; j++) {
      x[j] += b[j];
      max = Math.max(max, x[j]);
    }
    for (int j = 0; j < n; j++) x[j] -= max;
  }
}
