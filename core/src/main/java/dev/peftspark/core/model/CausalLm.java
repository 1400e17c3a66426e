package dev.peftspark.core.model;

import dev.peftspark.core.generate.KvCache;
import dev.peftspark.core.nn.CausalMask;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.LinearModules;
import dev.peftspark.core.nn.LmHeadLoss;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * A decoder-only language model: token ids {@code [B][T]} and an attention mask ({@code 0} padding, otherwise a
 * segment id, see {@link CausalMask}) to final hidden states, an LM head, and next-token cross-entropy computed
 * chunk by chunk ({@link LmHeadLoss}). Labels follow Hugging Face: aligned with the inputs, shifted inside,
 * {@code -100} ignored; null labels mean the inputs themselves.
 */
public interface CausalLm extends LinearModules {
  DataType dtype();

  int vocabSize();

  /** The attention structure of a batch (causal, segments, padding, sliding window). */
  CausalMask mask(int[][] mask);

  /**
   * Final normalised hidden states {@code [B*seq, H]} ({@code seq = mask.seq()}: T, plus prompt tuning's virtual
   * rows first in every example); layers keep what their backward needs.
   */
  INDArray hidden(int[][] ids, CausalMask mask);

  /** Backpropagates dL/dhidden from the last {@link #hidden}, stopping below the lowest trainable parameter. */
  void backwardHidden(INDArray dHidden);

  /** The output projection {@code [H] -> [V]} (for tied embeddings its weight is the embedding table). */
  LinearLayer head();

  /** Replaces the head by {@code f(head)} (a PEFT method wrapping {@code lm_head}). */
  void mapHead(UnaryOperator<LinearLayer> f);

  /**
   * Prompt tuning: {@code prompt [nv, H]} virtual token embeddings before every example's tokens (they take positions
   * 0..nv-1; see {@link CausalMask}); null removes them. Only one of prompt and prefix at a time.
   */
  void setPrompt(Param prompt);

  /**
   * Prefix tuning: {@code prefix [nv, }{@link #prefixWidth}{@code ]} virtual keys and values for every layer's
   * attention (PEFT's {@code past_key_values}); null removes them. Only one of prompt and prefix at a time.
   */
  void setPrefix(Param prefix);

  /** Columns of a prefix tensor: layers · 2 · key/value heads · head dim (PEFT's {@code token_dim} is kvh·hd). */
  int prefixWidth();

  /** The input token embedding table {@code [V, H]} (prompt tuning's text init copies rows of it). */
  Param inputEmbeddings();

  /** Virtual tokens before every example (prompt or prefix tuning), 0 without: positions they take. */
  int virtualTokens();

  /**
   * Gradient checkpointing ({@code train.gradient_checkpointing}): keep only each layer's input during the
   * forward and recompute the layer's activations in backward (one layer's at a time; one more forward per step).
   */
  void setGradientCheckpointing(boolean on);

  boolean gradientCheckpointing();

  /** Rows of logits held at once by the loss. */
  int lossChunkRows();

  void setLossChunkRows(int rows);

  /**
   * Another model of this shape on this one's base tensors (read, never copied: frozen tensors, and for
   * {@code trainable} the current values of trainable ones) with activations of its own, for data-parallel
   * micro-batches on several threads ({@code RowSplit}). It has no adapters (apply the same ones, then rebind its
   * trainable tensors with {@code ParamSet.sharingValues}); gradient checkpointing and loss chunking are copied.
   * Null when the layers cannot be shared (quantized layer linears keep per-call scratch).
   */
  default CausalLm twin(boolean trainable) { return null; }

  /** True when every layer linear is a plain {@link dev.peftspark.core.nn.Linear} under its adapters (what a twin can rebuild). */
  default boolean plainLinears() {
    return linears().stream().allMatch(l -> l.base() instanceof dev.peftspark.core.nn.Linear);
  }

  /** Every parameter once (a tied table appears once), base and adapters, frozen or not. */
  List<Param> params();

  /** The base model's tensors by Hugging Face name (no adapters; a tied head is not repeated). */
  Map<String, INDArray> stateDict();

  /** Positions the model was built for ({@code max_position_embeddings}, {@code n_positions}). */
  int maxPositions();

  /**
   * A key/value cache for up to {@code capacity} tokens (at most {@link #maxPositions}), virtual tokens included:
   * with prefix tuning it starts holding the prefix; prompt tuning's virtual tokens enter with the first prefill.
   */
  KvCache newCache(int capacity);

  /**
   * Cached decoding (batch 1, inference): final hidden states {@code [n, H]} of {@code ids} placed after the
   * tokens already in {@code cache}, whose keys and values it appends. Equal to the rows of {@link #hidden} on the
   * whole sequence. It overwrites what the layers keep for backward, so call it between training steps, not
   * between a forward and its backward.
   */
  INDArray hiddenCached(int[] ids, KvCache cache);

  /** Logits {@code [n, V]} of {@link #hiddenCached}. */
  default INDArray logitsCached(int[] ids, KvCache cache) { return head().forward(hiddenCached(ids, cache)); }

  default List<Param> trainableParams() { return params().stream().filter(Param::isTrainable).toList(); }

  /** Logits {@code [B*seq, V]} for every row (all of them at once: for small checks and generation). */
  default INDArray logits(int[][] ids, int[][] mask) { return head().forward(hidden(ids, mask(mask))); }

  /** Summed loss and target count, no gradients. */
  default LmHeadLoss.Result evaluate(int[][] ids, int[][] mask, int[][] labels) {
    CausalMask m = mask(mask);
    int[] targets = m.targets(labels == null ? ids : labels);
    return LmHeadLoss.compute(hidden(ids, m), targets, head(), 0, lossChunkRows(), false);
  }

  /**
   * Forward and backward with dL/d(token loss) = {@code gradScalePerToken} for every target token (a trainer that
   * normalises over a whole step's tokens passes 1/tokens); gradients accumulate. Returns summed loss and count.
   */
  default LmHeadLoss.Result forwardBackward(int[][] ids, int[][] mask, int[][] labels, double gradScalePerToken) {
    CausalMask m = mask(mask);
    int[] targets = m.targets(labels == null ? ids : labels);
    LmHeadLoss.Result r = LmHeadLoss.compute(hidden(ids, m), targets, head(), gradScalePerToken, lossChunkRows(), true);
    backwardHidden(r.dHidden());
    return new LmHeadLoss.Result(r.lossSum(), r.tokens(), null);
  }

  /** Mean next-token loss of this micro-batch; gradients of {@code scale ×} that mean accumulate. */
  default double trainStep(int[][] ids, int[][] mask, int[][] labels, double scale) {
    int tokens = 0;
    for (int t : mask(mask).targets(labels == null ? ids : labels)) if (t >= 0) tokens++;
    if (tokens == 0) throw new IllegalArgumentException("the batch has no target token (every label is -100 or padding)");
    return forwardBackward(ids, mask, labels, scale / tokens).mean();
  }

  /** Loads a Hugging Face model directory by its {@code config.json}'s {@code model_type} ({@link CausalLmConfig#read}). */
  static CausalLm load(Path dir, DataType dtype, boolean trainable) throws IOException {
    return CausalLmConfig.read(dir.resolve("config.json")).build(CausalLmConfig.readWeights(dir), dtype, trainable);
  }

  static Map<String, INDArray> stateDict(List<Param> base) {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Param p : base) out.put(p.name, p.value());
    return out;
  }

  static int[] flatten(int[][] ids) {
    int seq = ids[0].length;
    int[] flat = new int[ids.length * seq];
    for (int b = 0; b < ids.length; b++) {
      if (ids[b].length != seq) throw new IllegalArgumentException("ragged batch: row " + b + " has " + ids[b].length + " tokens, expected " + seq);
      System.arraycopy(ids[b], 0, flat, b * seq, seq);
    }
    return flat;
  }
}
