package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Language-model head and softmax cross-entropy fused over chunks of rows, so that at most {@code chunkRows × V}
 * logits exist at once: only rows with a target are projected; each chunk's logits give its loss and dlogits,
 * which are backpropagated into the head and into that chunk's rows of dL/dhidden before the next chunk.
 */
public final class LmHeadLoss {
  /**
   * Logits held at once by default: 16 Mi entries (64 MiB in float), e.g. 333 rows at GPT-2's vocabulary of 50,257.
   * Why not fewer: every chunk streams the whole head weight through both of its products (154 MB at GPT-2 small),
   * and few-row products run the head's GEMMs far below peak; at GPT-2 small's 255 rows one chunk costs ~0.7 s of
   * CPU per step against ~1.2 s in chunks of 83 (4 Mi), measured in BENCHMARKS.md ("GPT-2 kernels").
   */
  public static final long LOGIT_BUDGET = 1L << 24;

  private LmHeadLoss() {}

  /**
   * @param lossSum summed token cross-entropy (natural log) over the {@code tokens} rows that have a target
   * @param dHidden dL/dhidden [N, H] (zero rows where there is no target), null without backward
   */
  public record Result(double lossSum, int tokens, INDArray dHidden) {
    public double mean() { return tokens == 0 ? 0 : lossSum / tokens; }
  }

  /** Rows per chunk for a vocabulary of {@code vocab} under {@link #LOGIT_BUDGET}. */
  public static int defaultChunkRows(int vocab) { return (int) Math.max(1, LOGIT_BUDGET / vocab); }

  /**
   * @param hidden    [N, H], the final normalised hidden states
   * @param targets   [N] target class per row, {@link CausalMask#IGNORE} (any negative) for none
   * @param head      [H] -> [V]; its parameters' gradients accumulate when {@code backward}
   * @param gradScale dL/d(token loss) of every counted token (e.g. 1/tokens for the mean)
   */
  public static Result compute(INDArray hidden, int[] targets, LinearLayer head, double gradScale, int chunkRows,
                               boolean backward) {
    int n = (int) hidden.size(0), vocab = head.outFeatures();
    if (targets.length != n) throw new IllegalArgumentException(targets.length + " targets for " + n + " rows");
    if (chunkRows < 1) throw new IllegalArgumentException("chunkRows must be >= 1, got " + chunkRows);
    int count = 0;
    for (int y : targets) {
      if (y >= vocab) throw new IllegalArgumentException("target " + y + " outside the vocabulary of " + vocab);
      if (y >= 0) count++;
    }
    int[] rows = new int[count];
    for (int i = 0, c = 0; i < n; i++) if (targets[i] >= 0) rows[c++] = i;
    INDArray dHidden = backward ? Nd4j.zeros(hidden.dataType(), hidden.shape()) : null;
    double lossSum = 0;
    for (int from = 0; from < count; from += chunkRows) {
      int to = Math.min(count, from + chunkRows);
      boolean contiguous = rows[to - 1] - rows[from] == to - 1 - from;
      INDArray h = contiguous ? hidden.get(NDArrayIndex.interval(rows[from], rows[to - 1] + 1), NDArrayIndex.all())
          : Nd4j.pullRows(hidden, 1, java.util.Arrays.copyOfRange(rows, from, to));
      INDArray logits = head.forward(h);                                     // [c, V]
      INDArray dlogits;
      if (logits.dataType() == DataType.FLOAT) {
        // in place on the native logits: no Java copy of the chunk (16 MiB at the default budget), no second array
        lossSum += softmaxCrossEntropy(logits, vocab, targets, rows, from, to, backward ? gradScale : Double.NaN);
        if (!backward) {
          logits.close();                                                    // the chunk's largest buffer goes at once, not at the next GC
          if (!contiguous) h.close();
          continue;
        }
        dlogits = logits;
      } else {
        INDArray shifted = logits.subColumnVector(logits.max(true, 1));
        INDArray probs = Transforms.exp(shifted, true);
        INDArray sums = probs.sum(true, 1);
        for (int r = from; r < to; r++) {
          lossSum += Math.log(sums.getDouble(r - from, 0)) - shifted.getDouble(r - from, targets[rows[r]]);
        }
        if (!backward) continue;
        dlogits = probs.diviColumnVector(sums);
        for (int r = from; r < to; r++) {
          int y = targets[rows[r]];
          dlogits.putScalar(r - from, y, dlogits.getDouble(r - from, y) - 1.0);
        }
        dlogits.muli(gradScale);
      }
      INDArray dh = head.backward(dlogits, true);
      dlogits.close();
      if (contiguous) {
        dHidden.get(NDArrayIndex.interval(rows[from], rows[to - 1] + 1), NDArrayIndex.all()).assign(dh);
      } else {
        scatterRows(dh, dHidden, rows, from);
        h.close();
      }
      dh.close();
    }
    return new Result(lossSum, count, dHidden);
  }

  /**
   * Row {@code r} of {@code dh} into row {@code rows[from + r]} of {@code dHidden}, one bulk copy per row (both are
   * new c-order arrays). Per-row ND4J views and assigns cost ~30 ms of CPU per step at the LLaMA bench's 1,020 rows.
   */
  private static void scatterRows(INDArray dh, INDArray dHidden, int[] rows, int from) {
    if (dh.dataType() != dHidden.dataType() || dh.size(1) != dHidden.size(1) || !Gemm.direct(dh) || !Gemm.direct(dHidden))
      throw new IllegalStateException("expected dense c-order gradients of one type, got " + dh.shapeInfoToString()
          + " and " + dHidden.shapeInfoToString());
    int width = dh.dataType().width(), rowBytes = (int) dh.size(1) * width;
    java.nio.ByteBuffer src = dh.data().asNio(), dst = dHidden.data().asNio();
    byte[] row = new byte[rowBytes];
    long srcBase = dh.offset() * width, dstBase = dHidden.offset() * width;
    for (int r = 0; r < dh.size(0); r++) {
      src.get((int) (srcBase + (long) r * rowBytes), row);
      dst.put((int) (dstBase + (long) rows[from + r] * rowBytes), row);
    }
  }

  /**
   * Single precision, one row at a time (the double path above is the reference, {@code LmHeadLossTest} compares):
   * summed cross-entropy of rows {@code from..to} whose logits are the rows of {@code logits} ({@code [to-from, V]},
   * c order, FLOAT); unless {@code gradScale} is NaN, {@code logits} becomes dL/dlogits = (softmax − onehot)·gradScale
   * in place. Each row is copied once into a per-task array of V floats (L2-resident: 200 KB at GPT-2's vocabulary),
   * where its three passes (max, exp and sum, scale) run, and copied back once.
   */
  static double softmaxCrossEntropy(INDArray logits, int vocab, int[] targets, int[] rows, int from, int to, double gradScale) {
    if (logits.dataType() != DataType.FLOAT || logits.ordering() != 'c' || logits.length() != (long) (to - from) * vocab
        || logits.elementWiseStride() != 1)
      throw new IllegalArgumentException("expected contiguous FLOAT logits [" + (to - from) + ", " + vocab + "], got "
          + logits.shapeInfoToString());
    java.nio.FloatBuffer buf = logits.data().asNioFloat();
    int base = (int) logits.offset();
    double[] rowLoss = new double[to - from];
    Parallel.forRange(to - from, (a, b) -> {
      float[] z = new float[vocab];
      for (int r = a; r < b; r++) {
        int o = base + r * vocab;
        buf.get(o, z);
        rowLoss[r] = rowLoss(z, targets[rows[from + r]], gradScale);
        if (!Double.isNaN(gradScale)) buf.put(o, z);
      }
    });
    double loss = 0;
    for (double l : rowLoss) loss += l;   // summed in row order, whatever the threads
    return loss;
  }

  /**
   * One row's cross-entropy for target {@code y}; unless {@code gradScale} is NaN, {@code z} becomes its dlogits.
   * Each pass is a plain loop over the row (max, shift, the bulk {@link Floats#exp(float[], int, int)}, sum, scale)
   * so that C2 vectorises them; the sum runs in double over four interleaved partial sums.
   */
  private static double rowLoss(float[] z, int y, double gradScale) {
    int vocab = z.length;
    float max = Float.NEGATIVE_INFINITY;
    for (int j = 0; j < vocab; j++) max = Math.max(max, z[j]);
    float zy = z[y];
    for (int j = 0; j < vocab; j++) z[j] -= max;
    Floats.exp(z, 0, vocab);
    double sum = Floats.sum(z, 0, vocab);
    if (!Double.isNaN(gradScale)) {
      float k = (float) (gradScale / sum);
      for (int j = 0; j < vocab; j++) z[j] *= k;
      z[y] -= (float) gradScale;
    }
    return Math.log(sum) - (zy - max);
  }
}
