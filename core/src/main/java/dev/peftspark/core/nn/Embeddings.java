package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * BERT input embeddings: word + position + token type (all type 0), then LayerNorm. {@code ids [B][T] -> [B*T', H]}
 * where {@code T' = nv + T}: with prompt tuning, {@code nv} virtual token embeddings come first in every row (positions
 * 0..nv-1, the real tokens after them, as when PEFT passes {@code inputs_embeds} to BERT).
 */
public final class Embeddings {
  private final Param word;       // [V, H]
  private final Param position;   // [P, H]
  private final Param tokenType;  // [2, H]
  private final LayerNorm norm;
  private Param prompt;           // [nv, H] prompt tuning's virtual tokens (null: none)
  private int[] flatIds;          // [B*T], kept for the backward of trainable embeddings
  private int seq;                // T' = nv + T of the last forward

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

  /** Prepends {@code prompt [nv, H]} to every row from now on (prompt tuning). */
  public void setPrompt(Param prompt) { this.prompt = prompt; }

  public Param prompt() { return prompt; }

  /** Virtual tokens prepended to every row (0 without prompt tuning). */
  public int virtualTokens() { return prompt == null ? 0 : (int) prompt.shape[0]; }

  public boolean isTrainable() {
    return (prompt != null && prompt.isTrainable()) || word.isTrainable() || position.isTrainable() || tokenType.isTrainable()
        || norm.gamma().isTrainable() || norm.beta().isTrainable();
  }

  public INDArray forward(int[][] ids) {
    int batch = ids.length, tokens = ids[0].length, nv = virtualTokens();
    seq = nv + tokens;
    if (seq > position.shape[0])
      throw new IllegalArgumentException("sequence of " + seq + " tokens" + (nv > 0 ? " (" + nv + " virtual + " + tokens + ")" : "")
          + " exceeds the model's " + position.shape[0] + " positions");
    flatIds = new int[batch * tokens];
    long vocab = word.shape[0];
    for (int b = 0; b < batch; b++) {
      if (ids[b].length != tokens) throw new IllegalArgumentException("ragged batch: row " + b + " has " + ids[b].length + " tokens, expected " + tokens);
      for (int t = 0; t < tokens; t++) {
        int id = ids[b][t];
        if (id < 0 || id >= vocab) throw new IllegalArgumentException("token id " + id + " outside the vocabulary of " + vocab);
        flatIds[b * tokens + t] = id;
      }
    }
    int[] positions = new int[batch * seq];
    for (int i = 0; i < positions.length; i++) positions[i] = i % seq;
    INDArray x = Nd4j.pullRows(word.value, 1, flatIds);
    if (nv > 0) {   // [nv rows of prompt, T rows of words] per example
      INDArray withPrompt = Nd4j.create(x.dataType(), (long) batch * seq, x.size(1));
      INDArray rows = withPrompt.reshape('c', batch, seq, x.size(1));
      INDArray words = x.reshape('c', batch, tokens, x.size(1));
      INDArray p = prompt.value.castTo(x.dataType());
      for (int b = 0; b < batch; b++) {
        rows.get(NDArrayIndex.point(b), NDArrayIndex.interval(0, nv), NDArrayIndex.all()).assign(p);
        rows.get(NDArrayIndex.point(b), NDArrayIndex.interval(nv, seq), NDArrayIndex.all())
            .assign(words.get(NDArrayIndex.point(b), NDArrayIndex.all(), NDArrayIndex.all()));
      }
      x = withPrompt;
    }
    x.addi(Nd4j.pullRows(position.value, 1, positions));
    x.addiRowVector(tokenType.value.getRow(0));
    return norm.forward(x);
  }

  /** Accumulates gradients of the trainable tables (prompt tuning; full fine-tuning: sparse row updates). */
  public void backward(INDArray dy) {
    INDArray dx = norm.backward(dy);                                   // [B*T', H]
    int nv = virtualTokens(), tokens = seq - nv, batch = flatIds.length / Math.max(1, tokens);
    if (prompt != null && prompt.isTrainable()) {
      INDArray rows = dx.reshape('c', batch, seq, dx.size(1));
      prompt.grad.addi(rows.get(NDArrayIndex.all(), NDArrayIndex.interval(0, nv), NDArrayIndex.all()).sum(0));
    }
    if (word.isTrainable()) {
      int[] rows = new int[flatIds.length];                             // the row of dx holding each real token
      for (int i = 0; i < rows.length; i++) rows[i] = (i / tokens) * seq + nv + i % tokens;
      for (int i = 0; i < rows.length; i++) word.grad.getRow(flatIds[i]).addi(dx.getRow(rows[i]));
    }
    if (position.isTrainable()) {
      int[] positions = new int[dx.rows()];
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
