package dev.peftspark.datasets.lm;

/**
 * One tokenized causal-LM example.
 *
 * @param ids    token ids
 * @param labels aligned with {@code ids} (Hugging Face convention: the model shifts them), {@link #IGNORE} where no
 *               loss is taken (an instruction's prompt)
 */
public record LmExample(int[] ids, int[] labels) {
  /** Hugging Face's label for "no loss here" (core.nn.CausalMask.IGNORE). */
  public static final int IGNORE = -100;

  public LmExample {
    if (ids.length == 0) {
      throw new IllegalArgumentException("an example needs at least one token");
    }
    if (labels.length != ids.length) {
      throw new IllegalArgumentException(ids.length + " ids but " + labels.length + " labels");
    }
  }

  /** An example whose every token is a target (plain text). */
  public static LmExample ofText(int[] ids) {
    return new LmExample(ids, ids.clone());
  }

  public int length() {
    return ids.length;
  }

  /** Labels that are not {@link #IGNORE}. */
  public int targets() {
    int n = 0;
    for (int l : labels) {
      if (l != IGNORE) {
        n++;
      }
    }
    return n;
  }

  /** The first {@code n} tokens (this example when it is not longer). */
  public LmExample truncated(int n) {
    if (ids.length <= n) {
      return this;
    }
    return new LmExample(java.util.Arrays.copyOf(ids, n), java.util.Arrays.copyOf(labels, n));
  }
}
