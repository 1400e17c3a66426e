package dev.peftspark.core.train;

import dev.peftspark.core.model.Gpt2Model;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.LlamaModel;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.prompt.PromptConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static dev.peftspark.core.train.CausalLmTrainingTest.gpt2;
import static dev.peftspark.core.train.CausalLmTrainingTest.llama;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A step split by rows over two threads ({@link RowSplit}, through {@link Trainer#accumulate}) against the same
 * step on one thread over the whole batch: loss, gradients and the parameters after an AdamW step agree to double
 * round-off. The batches have padding, packed documents and -100 labels, so the parts carry different numbers of
 * target tokens (the token weighting is what is tested).
 */
class RowSplitTest {
  private final int blasThreads = Nd4j.factory().blas().getMaxThreads();

  @AfterEach
  void restore() {
    Nd4j.factory().blas().setMaxThreads(blasThreads);
    RowSplit.mode = RowSplit.Mode.ROWS;
  }

  private static LoraConfig lora(List<String> targets, boolean dora) {
    return new LoraConfig(4, 8, 0.0, targets, false, "none", false, dora);
  }

  /** A LLaMA (tied) and GPT-2 with the method applied; the same weights and adapters for every call. */
  private static Supplier<PeftCausalLm> llamaWith(Method method, LoraConfig lora, Ia3Config ia3, PromptConfig prompt,
                                                  DataType dtype) {
    LlamaConfig c = llama(true);
    Map<String, INDArray> w = LlamaModel.randomWeights(c, DataType.DOUBLE, 7);
    return () -> PeftCausalLm.create(method, lora, ia3, prompt, t -> LlamaModel.fromWeights(c, w, dtype, t), dtype, 3);
  }

  private static Supplier<PeftCausalLm> gpt2With(Method method, LoraConfig lora) {
    var c = gpt2();
    var w = Gpt2Model.randomWeights(c, DataType.DOUBLE, 7);
    return () -> PeftCausalLm.create(method, lora, null, null, t -> Gpt2Model.fromWeights(c, w, DataType.DOUBLE, t),
        DataType.DOUBLE, 3);
  }

  /** Loss and gradients of one accumulate over {@code batch} on {@code threads} threads. */
  private record Grads(double loss, INDArray grads) {}

  private static Grads accumulate(PeftCausalLm m, LmBatch batch, int microRows, int threads) {
    Nd4j.factory().blas().setMaxThreads(threads);
    m.params().zeroGrad();
    double loss = Trainer.accumulate(m, batch, batch.weight(), microRows);
    return new Grads(loss, m.params().grads().dup());
  }

  private static double relative(INDArray a, INDArray b) {
    return a.sub(b).norm2Number().doubleValue() / b.norm2Number().doubleValue();
  }

  /** Split and whole-batch steps of two identical models agree; so do their parameters after a trainer step. */
  private static void assertSplitEqualsWhole(Supplier<PeftCausalLm> model, int rows, int microRows) {
    LmBatch batch = CausalLmTrainingTest.data(rows, rows, 12, 5, true).get(0);
    PeftCausalLm whole = model.get(), split = model.get();
    Grads ref = accumulate(whole, batch, microRows, 1);
    Grads got = accumulate(split, batch, microRows, 2);
    assertEquals(2, RowSplit.parts(Math.min(rows, microRows)), "the step was split");
    assertTrue(split.replicas(2).get(1).params().grads().norm2Number().doubleValue() > 0, "the replica computed gradients");
    assertTrue(ref.grads.norm2Number().doubleValue() > 0);
    assertEquals(ref.loss, got.loss, 1e-12 * Math.abs(ref.loss), "loss");
    assertTrue(relative(got.grads, ref.grads) <= 1e-12, split.method() + " gradients differ by " + relative(got.grads, ref.grads));

    var cfg = TrainerTest.train(1, rows, rows / microRows, 1e-2, 0);
    Nd4j.factory().blas().setMaxThreads(1);
    double lossWhole = new Trainer<>(whole, cfg, 1).step(batch, 0);
    Nd4j.factory().blas().setMaxThreads(2);
    double lossSplit = new Trainer<>(split, cfg, 1).step(batch, 0);
    assertEquals(lossWhole, lossSplit, 1e-12 * Math.abs(lossWhole));
    INDArray moved = split.params().values().sub(model.get().params().values());
    assertTrue(moved.norm2Number().doubleValue() > 1e-4, "AdamW moved the parameters");
    assertTrue(relative(split.params().values(), whole.params().values()) <= 1e-12, "parameters after AdamW");
  }

  @Test
  void loraOnLlamaEqualsTheWholeBatchStep() {
    assertSplitEqualsWhole(llamaWith(Method.LORA, lora(List.of("q_proj", "v_proj", "down_proj", "lm_head"), false), null, null,
        DataType.DOUBLE), 5, 5);   // parts of 2 and 3 rows
  }

  @Test
  void doraAndIa3OnLlamaEqualTheWholeBatchStep() {
    assertSplitEqualsWhole(llamaWith(Method.LORA, lora(List.of("all-linear"), true), null, null, DataType.DOUBLE), 4, 4);
    assertSplitEqualsWhole(llamaWith(Method.IA3, null, Ia3Config.llamaDefaults(), null, DataType.DOUBLE), 4, 4);
  }

  @Test
  void fullFineTuningOnLlamaEqualsTheWholeBatchStep() {
    assertSplitEqualsWhole(llamaWith(Method.FULL, null, null, null, DataType.DOUBLE), 4, 4);
  }

  @Test
  void promptAndPrefixTuningEqualTheWholeBatchStep() {
    assertSplitEqualsWhole(llamaWith(Method.PROMPT_TUNING, null, null, PromptConfig.random(3), DataType.DOUBLE), 4, 4);
    assertSplitEqualsWhole(llamaWith(Method.PREFIX_TUNING, null, null, PromptConfig.random(3), DataType.DOUBLE), 4, 4);
  }

  @Test
  void gpt2LoraAndFullEqualTheWholeBatchStep() {
    assertSplitEqualsWhole(gpt2With(Method.LORA, lora(List.of("c_attn", "c_fc"), false)), 4, 4);
    assertSplitEqualsWhole(gpt2With(Method.FULL, null), 3, 3);
  }

  @Test
  void gradientAccumulationSplitsEachMicroBatch() {
    // 6 rows, micro-batches of 3 (grad_accum 2), each cut 1 + 2 over the threads; replicas accumulate across both
    assertSplitEqualsWhole(llamaWith(Method.LORA, lora(List.of("q_proj", "v_proj"), false), null, null, DataType.DOUBLE), 6, 3);
  }

  @Test
  void gradientCheckpointingFollowsThePrimaryModel() {
    Supplier<PeftCausalLm> base = llamaWith(Method.FULL, null, null, null, DataType.DOUBLE);
    assertSplitEqualsWhole(() -> {
      PeftCausalLm m = base.get();
      m.model().setGradientCheckpointing(true);
      m.model().setLossChunkRows(7);
      return m;
    }, 4, 4);
  }

  @Test
  void fewerRowsThanThreadsAndOpsModeKeepOneModel() {
    Nd4j.factory().blas().setMaxThreads(2);
    assertEquals(1, RowSplit.parts(1));
    assertEquals(2, RowSplit.parts(2));
    RowSplit.mode = RowSplit.Mode.OPS;
    assertEquals(1, RowSplit.parts(4));
    assertEquals("ops", RowSplit.mode());
    Nd4j.factory().blas().setMaxThreads(1);
    RowSplit.mode = RowSplit.Mode.ROWS;
    assertEquals(1, RowSplit.parts(4));
    assertEquals("rows", RowSplit.mode());
  }

  @Test
  void batchOfOneOnTwoThreadsEqualsTheOneThreadStep() {
    var model = gpt2With(Method.LORA, lora(List.of("c_attn"), false));
    LmBatch batch = CausalLmTrainingTest.data(1, 1, 12, 5, true).get(0);
    PeftCausalLm a = model.get(), b = model.get();
    Grads ref = accumulate(a, batch, 1, 1), got = accumulate(b, batch, 1, 2);
    assertEquals(ref.loss, got.loss, 1e-12 * Math.abs(ref.loss));
    assertTrue(relative(got.grads, ref.grads) <= 1e-12);
  }

  /**
   * In float the split step is as accurate as the unsplit one: both are float evaluations of one function that
   * differ in summation order only, so their errors against a double evaluation of the same (float-valued) weights
   * are of one size; the split's may exceed the unsplit's by a small factor, not by orders of magnitude.
   */
  @Test
  void floatSplitIsAsAccurateAsTheUnsplitStep() {
    LlamaConfig c = llama(true);
    Map<String, INDArray> w = LlamaModel.randomWeights(c, DataType.DOUBLE, 7);
    w.replaceAll((k, v) -> v.castTo(DataType.FLOAT).castTo(DataType.DOUBLE));   // weights exact in float
    LoraConfig lc = lora(List.of("q_proj", "v_proj", "lm_head"), false);
    Supplier<PeftCausalLm> f = () -> PeftCausalLm.create(Method.LORA, lc, null, null, t -> LlamaModel.fromWeights(c, w, DataType.FLOAT, t), DataType.FLOAT, 3);
    PeftCausalLm d = PeftCausalLm.create(Method.LORA, lc, null, null, t -> LlamaModel.fromWeights(c, w, DataType.DOUBLE, t), DataType.DOUBLE, 3);
    PeftCausalLm whole = f.get(), split = f.get();   // same seed: the same adapters
    d.params().values().assign(whole.params().values().castTo(DataType.DOUBLE));   // the adapters' float values
    LmBatch batch = CausalLmTrainingTest.data(6, 6, 12, 5, true).get(0);
    Grads exact = accumulate(d, batch, 6, 1);
    Grads ref = accumulate(whole, batch, 6, 1), got = accumulate(split, batch, 6, 2);
    double errWhole = relative(ref.grads.castTo(DataType.DOUBLE), exact.grads), errSplit = relative(got.grads.castTo(DataType.DOUBLE), exact.grads);
    assertTrue(errWhole < 1e-5, "float round-off of the unsplit step: " + errWhole);
    assertTrue(errSplit <= 4 * errWhole, "split " + errSplit + " against unsplit " + errWhole);
    assertEquals(exact.loss, got.loss, 4 * Math.max(Math.abs(ref.loss - exact.loss), 1e-7 * exact.loss));
    assertFalse(Double.isNaN(got.loss));
  }
}
