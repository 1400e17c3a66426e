package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Prompt tuning's input side for a causal LM: the {@code nv} virtual token embeddings {@code [nv, H]} placed before
 * the token embeddings of every example (PEFT's {@code inputs_embeds = cat(prompts, embeds)}), and the way back.
 */
public final class PromptRows {
  private PromptRows() {}

  /** {@code [B*T, H]} token embeddings to {@code [B*(nv+T), H]}: each example's rows after the prompt's. */
  public static INDArray prepend(Param prompt, INDArray embeds, int batch) {
    long nv = prompt.shape[0], h = embeds.size(1), tokens = embeds.size(0) / batch, seq = nv + tokens;
    INDArray out = Nd4j.create(embeds.dataType(), batch * seq, h);
    INDArray rows = out.reshape('c', batch, seq, h);
    INDArray words = embeds.reshape('c', batch, tokens, h);
    INDArray p = prompt.value().castTo(embeds.dataType());
    for (int b = 0; b < batch; b++) {
      rows.get(NDArrayIndex.point(b), NDArrayIndex.interval(0, nv), NDArrayIndex.all()).assign(p);
      rows.get(NDArrayIndex.point(b), NDArrayIndex.interval(nv, seq), NDArrayIndex.all())
          .assign(words.get(NDArrayIndex.point(b), NDArrayIndex.all(), NDArrayIndex.all()));
    }
    return out;
  }

  /**
   * dL/d{@link #prepend}'s output {@code [B*(nv+T), H]}: the virtual rows, summed over the batch, accumulate into
   * the prompt's gradient (when trainable); the token rows {@code [B*T, H]} are returned.
   */
  public static INDArray backward(Param prompt, INDArray d, int batch) {
    long nv = prompt.shape[0], h = d.size(1), seq = d.size(0) / batch;
    INDArray rows = d.reshape('c', batch, seq, h);
    if (prompt.isTrainable())
      prompt.grad().addi(rows.get(NDArrayIndex.all(), NDArrayIndex.interval(0, nv), NDArrayIndex.all()).sum(0));
    return rows.get(NDArrayIndex.all(), NDArrayIndex.interval(nv, seq), NDArrayIndex.all()).dup('c')
        .reshape('c', batch * (seq - nv), h);
  }

  /** The rows of {@code x [nv+n, H]} after the first {@code nv} (a cached prefill's real tokens). */
  public static INDArray dropVirtual(INDArray x, int nv) {
    return nv == 0 ? x : x.get(NDArrayIndex.interval(nv, x.size(0)), NDArrayIndex.all()).dup('c');
  }
}
