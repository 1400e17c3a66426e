package dev.peftspark.core.model;

import dev.peftspark.core.nn.CausalMask;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.PromptRows;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Collection;

/**
 * A causal LM's prompt or prefix tuning state (shared by {@link LlamaModel} and {@link Gpt2Model}): at most one of
 * a prompt {@code [nv, H]} (virtual input rows) and a prefix {@code [nv, prefixWidth]} (every layer's virtual keys
 * and values; the model hands it to its attentions), checked when set.
 */
final class VirtualTokens {
  private Param prompt, prefix;   // null: none
  private int batch;              // examples of the last prepend (prompt tuning's backward)

  Param prompt() { return prompt; }

  Param prefix() { return prefix; }

  int promptRows() { return rows(prompt); }

  int prefixRows() { return rows(prefix); }

  /** Virtual tokens before every example: the positions they take. */
  int count() { return rows(prompt) + rows(prefix); }

  private static int rows(Param p) { return p == null ? 0 : (int) p.shape[0]; }

  void setPrompt(Param p, long hidden) {
    if (p != null && (prefix != null || p.shape.length != 2 || p.shape[1] != hidden))
      throw new IllegalArgumentException("prompt " + p + ": expected [nv, " + hidden + "] and no prefix");
    prompt = p;
  }

  void setPrefix(Param p, long width) {
    if (p != null && (prompt != null || p.shape.length != 2 || p.shape[1] != width))
      throw new IllegalArgumentException("prefix " + p + ": expected [nv, " + width + "] and no prompt");
    prefix = p;
  }

  CausalMask mask(int[][] mask, int slidingWindow, DataType dtype) {
    return CausalMask.of(mask, slidingWindow, dtype, promptRows(), prefixRows());
  }

  /** Refuses ids that do not match {@code mask}, or a mask made for other virtual tokens than the model's. */
  void check(int[][] ids, CausalMask mask) {
    if (ids.length != mask.batch() || ids[0].length != mask.tokens() || mask.virtual() != promptRows() || mask.prefix() != prefixRows())
      throw new IllegalArgumentException("ids are " + ids.length + "×" + ids[0].length + ", the mask " + mask.batch() + "×"
          + mask.tokens() + " (with " + mask.virtual() + " virtual rows and " + mask.prefix() + " prefix keys; the model has "
          + promptRows() + " and " + prefixRows() + ")");
  }

  /** {@code [B*T, H]} token embeddings with the prompt's rows before every example's (as they are without a prompt). */
  INDArray prepend(INDArray embeds, int batch) {
    this.batch = batch;
    return prompt == null ? embeds : PromptRows.prepend(prompt, embeds, batch);
  }

  /** dL/d{@link #prepend}'s output to dL/d its token rows, the prompt's rows accumulated into its gradient. */
  INDArray backward(INDArray d) {
    return prompt == null ? d : PromptRows.backward(prompt, d, batch);
  }

  boolean promptTrains() { return prompt != null && prompt.isTrainable(); }

  boolean prefixTrains() { return prefix != null && prefix.isTrainable(); }

  void addParams(Collection<Param> all) {
    if (prompt != null) all.add(prompt);
    if (prefix != null) all.add(prefix);
  }
}
