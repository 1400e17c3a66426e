package dev.peftspark.core.model;

import dev.peftspark.core.nn.CrossEntropy;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.Pooling;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Sequence classification: encoder → pooling (mean over real tokens, or [CLS]) → {@code classifier} linear
 * ({@code [C, H]}, saved like PEFT's modules_to_save) → softmax cross-entropy.
 */
public final class BertClassifier {
  public static final String HEAD = "classifier";

  private final BertEncoder encoder;
  private final Pooling pooling;
  private final Linear head;
  private final DataType dtype;

  public BertClassifier(BertEncoder encoder, Pooling.Mode pooling, Linear head, DataType dtype) {
    this.encoder = encoder;
    this.pooling = new Pooling(pooling);
    this.head = head;
    this.dtype = dtype;
  }

  /** A fresh trainable head: weight ~ N(0, 0.02²) (BERT's initializer_range), bias 0. */
  public static Linear newHead(int numLabels, int hidden, DataType dtype, long seed) {
    SplittableRandom rng = new SplittableRandom(seed ^ 0x5EEDC1A55L);
    double[] w = new double[numLabels * hidden];
    for (int i = 0; i < w.length; i++) {
      double u1 = rng.nextDouble(), u2 = rng.nextDouble();
      w[i] = 0.02 * Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }
    return new Linear(HEAD,
        Param.trainable(HEAD + ".weight", Nd4j.createFromArray(w).reshape(numLabels, hidden).castTo(dtype)),
        Param.trainable(HEAD + ".bias", Nd4j.zeros(dtype, numLabels)));
  }

  public BertEncoder encoder() { return encoder; }
  public Linear head() { return head; }
  public Pooling.Mode pooling() { return pooling.mode(); }
  public DataType dtype() { return dtype; }
  public int numLabels() { return head.outFeatures(); }

  /** logits [B, C]. */
  public INDArray forward(int[][] ids, int[][] mask) {
    INDArray hidden = encoder.forward(ids, mask);
    return head.forward(pooling.forward(hidden, mask, dtype));
  }

  /**
   * Forward and backward on one micro-batch; gradients are accumulated scaled by {@code scale} (the micro-batch's
   * share of the optimizer step's examples). Returns the mean loss of this micro-batch.
   */
  public double trainStep(int[][] ids, int[][] mask, int[] labels, double scale) {
    INDArray logits = forward(ids, mask);
    INDArray dlogits = Nd4j.create(logits.dataType(), logits.shape());
    double loss = CrossEntropy.lossAndGrad(logits, labels, dlogits, scale);
    INDArray dpooled = head.backward(dlogits, true);
    encoder.backward(pooling.backward(dpooled));
    return loss;
  }

  /** Mean-pooled, L2-normalised sentence embeddings [B, H] (sentence-transformers' all-MiniLM-L6-v2 recipe). */
  public static INDArray embed(BertEncoder encoder, int[][] ids, int[][] mask, DataType dtype) {
    INDArray pooled = new Pooling(Pooling.Mode.MEAN).forward(encoder.forward(ids, mask), mask, dtype);
    INDArray norms = pooled.norm2(1).reshape(pooled.size(0), 1);
    return pooled.diviColumnVector(Nd4j.getExecutioner().exec(
        new org.nd4j.linalg.api.ops.impl.scalar.ScalarMax(norms, 1e-12)));
  }

  public List<Param> params() {
    List<Param> all = new ArrayList<>(encoder.params());   // includes adapters wrapped around its linears
    all.addAll(head.params());
    return all;
  }

  public List<Param> trainableParams() {
    return params().stream().filter(Param::isTrainable).toList();
  }
}
