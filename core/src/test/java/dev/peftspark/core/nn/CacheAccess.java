package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

/** Test access to what an {@link AttentionCache} holds. */
public final class CacheAccess {
  private CacheAccess() {}

  /** Cached keys {@code [kvh, length, hd]} (after RoPE). */
  public static INDArray keys(AttentionCache c) { return c.keys(); }

  public static INDArray values(AttentionCache c) { return c.values(); }
}
