package dev.peftspark.datasets.lm;

/**
 * Text to token ids and back for a causal language model.
 *
 * <p>{@link #encode} adds no special tokens: callers frame documents themselves ({@link #prefixIds()} before,
 * {@link #eosId()} after), so that a prompt and its response can be encoded as parts of one sequence.
 */
public interface LmTokenizer {
  /** The ids of the text alone (no BOS, no EOS). */
  int[] encode(String text);

  /** The text of the ids (special tokens included as their text). */
  String decode(int[] ids);

  /** The end-of-text id appended to every document. */
  int eosId();

  /** Ids run from 0 to vocabSize() - 1. */
  int vocabSize();

  /** Special tokens the model expects at the start of a document (LLaMA's BOS); none for GPT-2. */
  default int[] prefixIds() {
    return new int[0];
  }
}
