package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;

/** Softmax cross-entropy over rows of {@code logits [B, C]}, mean over the batch. */
public final class CrossEntropy {
  private CrossEntropy() {}

  /** Loss value and, if {@code dlogits} is non-null, its gradient (times {@code scale}) written into it. */
  public static double lossAndGrad(INDArray logits, int[] labels, INDArray dlogits, double scale) {
    int batch = (int) logits.size(0);
    int classes = (int) logits.size(1);
    INDArray probs = Nd4j.exec(new SoftMax(logits.dup(), null, -1))[0];
    double loss = 0;
    for (int b = 0; b < batch; b++) {
      int y = labels[b];
      if (y < 0 || y >= classes) throw new IllegalArgumentException("label " + y + " outside 0.." + (classes - 1));
      loss -= Math.log(Math.max(probs.getDouble(b, y), Double.MIN_NORMAL));
    }
    if (dlogits != null) {
      dlogits.assign(probs);
      for (int b = 0; b < batch; b++) dlogits.putScalar(b, labels[b], dlogits.getDouble(b, labels[b]) - 1.0);
      dlogits.muli(scale / batch);
    }
    return loss / batch;
  }

  public static INDArray softmax(INDArray logits) {
    return Nd4j.exec(new SoftMax(logits.dup(), null, -1))[0];
  }
}
