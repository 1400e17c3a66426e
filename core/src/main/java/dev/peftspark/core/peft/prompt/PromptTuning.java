package dev.peftspark.core.peft.prompt;

import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.nn.Param;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.SplittableRandom;

/**
 * Prompt tuning (Lester et al., PEFT's {@code PROMPT_TUNING}): {@code num_virtual_tokens} trainable embeddings
 * {@code [nv, H]} prepended to the word embeddings of every input; the base stays frozen. They pass through the
 * model's position/type embeddings and LayerNorm like real tokens (PEFT hands them to BERT as
 * {@code inputs_embeds}). Saved as PEFT's one tensor {@code prompt_embeddings}.
 */
public final class PromptTuning {
  public static final String TENSOR = "prompt_embeddings";

  private PromptTuning() {}

  public static Param inject(BertEncoder encoder, PromptConfig cfg, DataType dtype, long seed) {
    INDArray init;
    if (cfg.textInit()) {
      int[] ids = cfg.virtualTokenIds();
      INDArray word = encoder.embeddings().word().value();
      for (int id : ids)
        if (id < 0 || id >= word.size(0)) throw new IllegalArgumentException("prompt init token id " + id + " outside the vocabulary");
      init = Nd4j.pullRows(word, 1, ids).castTo(dtype);
    } else {
      init = normal(cfg.numVirtualTokens(), encoder.config().hiddenSize(), dtype, seed ^ 0x9E3779B97F4A7C15L);
    }
    Param p = Param.trainable(TENSOR, init);
    encoder.embeddings().setPrompt(p);
    return p;
  }

  /**
   * Prompt tuning for a causal LM: {@code [nv, H]} virtual token embeddings before every example's tokens (PEFT's
   * {@code CAUSAL_LM}: they take positions 0..nv-1 and predict nothing, see
   * {@link dev.peftspark.core.nn.CausalMask}). TEXT init copies the rows of the model's input embeddings.
   */
  public static Param inject(CausalLm model, PromptConfig cfg, DataType dtype, long seed) {
    INDArray word = model.inputEmbeddings().value();
    INDArray init = cfg.textInit() ? textInit(word, cfg).castTo(dtype)
        : normal(cfg.numVirtualTokens(), (int) word.size(1), dtype, seed ^ 0x9E3779B97F4A7C15L);
    Param p = Param.trainable(TENSOR, init);
    model.setPrompt(p);
    return p;
  }

  private static INDArray textInit(INDArray word, PromptConfig cfg) {
    int[] ids = cfg.virtualTokenIds();
    for (int id : ids)
      if (id < 0 || id >= word.size(0)) throw new IllegalArgumentException("prompt init token id " + id + " outside the vocabulary of " + word.size(0));
    return Nd4j.pullRows(word, 1, ids);
  }

  /** N(0, 1) entries (PEFT's virtual-token tables are {@code nn.Embedding}s with their default init). */
  static INDArray normal(int rows, int cols, DataType dtype, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    double[] v = new double[rows * cols];
    for (int i = 0; i < v.length; i++) {
      double u1 = rng.nextDouble(), u2 = rng.nextDouble();
      v[i] = Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }
    return Nd4j.createFromArray(v).reshape(rows, cols).castTo(dtype);
  }
}
