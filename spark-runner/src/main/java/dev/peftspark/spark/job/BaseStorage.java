package dev.peftspark.spark.job;

import dev.peftspark.core.model.PackedTensors;
import dev.peftspark.core.peft.Method;

/** How a cached base model holds its tensors in memory ({@link CausalLmBase}, {@link BaseModel}: one cache entry per form). */
public enum BaseStorage {
  /** Every tensor in float (every method but qlora). */
  FLOAT,
  /** QLoRA's: layer linears in NF4 only ({@link PackedTensors}); no float copy of them is kept. */
  NF4;

  public static BaseStorage of(Method method) { return method == Method.QLORA ? NF4 : FLOAT; }
}
