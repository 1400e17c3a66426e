package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** BERT input embeddings: word + position + token type (all type 0), then LayerNorm. {@code ids [B][T] -> [B*T, H]}. */
public final class Embeddings {
  private final Param word;       // [V, H]
  private final Param position;   // [P, H]
  private final Param tokenType;  // [2, H]
  private final LayerNorm norm;
  private int[] flatIds;          // [B*T], kept for the backward of trainable embeddings
  private int seq;

  public Embeddings(Param word, Param position, Param tokenType, LayerNorm norm) {
    this.word = word;
    this.position = position;
    this.tokenType = tokenType;
    this.norm = norm;
  }

  public LayerNorm norm() { return norm; }
  public Param word() { return word; }
  public Param position() { return position; }
  public Param tokenType() { return tokenType; }

  public boolean isTrainable() {
    return word.isTrainable() || position.isTrainable() || tokenType.isTrainable()
        || norm.gamma().isTrainable() || norm.beta().isTrainable();
  }

  public INDArray forward(int[][] ids) {
    int batch = ids.length;
    seq = ids[0].length;
    if (seq > position.shape[0])
      throw new IllegalArgumentException("sequence of " + seq + " tokens exceeds the model's " + position.shape[0] + " positions");
    flatIds = new int[batch * seq];
    int[] positions = new int[batch * seq];
    long vocab = word.shape[0];
    for (int b = 0; b < batch; b++) {
      if (ids[b].length != seq) throw new IllegalArgumentException("ragged batch: row " + b + " has " + ids[b].length + " tokens, expected " + seq);
      for (int t = 0; t < seq; t++) {
        int id = ids[b][t];
        if (id < 0 || id >= vocab) throw new IllegalArgumentException("token id " + id + " outside the vocabulary of " + vocab);
        flatIds[b * seq + t] = id;
        positions[b * seq + t] = t;
      }
    }
    INDArray x = Nd4j.pullRows(word.value, 1, flatIds);
    x.addi(Nd4j.pullRows(position.value, 1, positions));
    x.addiRowVector(tokenType.value.getRow(0));
    return norm.forward(x);
  }

  /** Accumulates gradients of the trainable tables (full fine-tuning only; sparse row updates). */
  public void backward(INDArray dy) {
    INDArray dx = norm.backward(dy);
    if (word.isTrainable()) scatterAdd(word.grad, flatIds, dx);
    if (position.isTrainable()) {
      int[] positions = new int[flatIds.length];
      for (int i = 0; i < positions.length; i++) positions[i] = i % seq;
      scatterAdd(position.grad, positions, dx);
    }
    if (tokenType.isTrainable()) tokenType.grad.getRow(0).addi(dx.sum(0));
    flatIds = null;
  }

  private static void scatterAdd(INDArray table, int[] rows, INDArray d) {
    for (int i = 0; i < rows.length; i++) table.getRow(rows[i]).addi(d.getRow(i));
  }
}
