package dev.peftspark.core.peft;

import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.CausalLmConfig;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.LinearModules;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.peft.ia3.Ia3;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.Lora;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.lora.LoraLinear;
import dev.peftspark.core.peft.prompt.PrefixTuning;
import dev.peftspark.core.peft.prompt.PromptConfig;
import dev.peftspark.core.peft.prompt.PromptTuning;
import dev.peftspark.core.peft.qlora.Qlora;
import dev.peftspark.core.quant.QuantizedLinear;
import dev.peftspark.core.train.LmBatch;
import dev.peftspark.core.train.LmEvalResult;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import java.util.function.UnaryOperator;

/**
 * A causal LM (LLaMA family, GPT-2) with one PEFT method applied: {@code lora} (DoRA with {@code use_dora}),
 * {@code qlora} (LoRA on an NF4 base), {@code ia3}, {@code prompt_tuning} (virtual input tokens),
 * {@code prefix_tuning} (virtual keys and values in every layer), or {@code full} (every base tensor trains: fine-tuning, or
 * pretraining from a random init). LoRA and IA3 may target {@code lm_head} by name, as in PEFT ({@code all-linear}
 * leaves it out, as PEFT does). A step's loss is the mean over target tokens ({@link LmBatch#weight}).
 */
public final class PeftCausalLm implements PeftModel<LmBatch> {
  /** Builds the base model; {@code trainable} makes every base tensor a trainable parameter ({@code full}). */
  @FunctionalInterface
  public interface Base {
    CausalLm build(boolean trainable);
  }

  private final Method method;
  private final LoraConfig lora;   // null unless lora or qlora
  private final Ia3Config ia3;     // null unless ia3
  private final PromptConfig prompt;   // null unless prompt_tuning or prefix_tuning
  private final CausalLm model;
  private final ParamSet params;
  private final long totalParams;
  private final IntFunction<CausalLm> replicaModels;   // replica k's model, adapters applied; null: it has none
  private final List<PeftCausalLm> replicas = new ArrayList<>();   // [0] is this model
  private boolean training = true;

  private PeftCausalLm(Method method, LoraConfig lora, Ia3Config ia3, PromptConfig prompt, CausalLm model, DataType dtype,
                       IntFunction<CausalLm> replicaModels) {
    this.method = method;
    this.lora = lora;
    this.ia3 = ia3;
    this.prompt = prompt;
    this.model = model;
    this.params = new ParamSet(model.trainableParams(), dtype);
    long quantized = model.linears().stream().map(LinearLayer::base)
        .filter(l -> l instanceof QuantizedLinear).mapToLong(l -> ((QuantizedLinear) l).packedWeight().size()).sum();
    this.totalParams = model.params().stream().mapToLong(Param::length).sum() + quantized;
    this.replicaModels = replicaModels;
    replicas.add(this);
  }

  /** A replica of {@code primary} on {@code model}: trainable values shared with it, gradients of its own. */
  private PeftCausalLm(PeftCausalLm primary, CausalLm model) {
    this.method = primary.method;
    this.lora = primary.lora;
    this.ia3 = primary.ia3;
    this.prompt = primary.prompt;
    this.model = model;
    this.params = primary.params.sharingValues(model.trainableParams());
    this.totalParams = primary.totalParams;
    this.replicaModels = null;
    replicas.add(this);
  }

  /**
   * A model to which the caller applied the method itself (the bench builds its own bases and adapters); its
   * trainable tensors are packed into a new {@link ParamSet}.
   *
   * @param replicaModels builds the model of replica {@code k ≥ 1} the same way (from {@link CausalLm#twin}, with
   *                      the same adapters), or returns null where it cannot; the replica's trainable values are
   *                      then rebound to this model's
   */
  public static PeftCausalLm of(Method method, CausalLm model, DataType dtype, IntFunction<CausalLm> replicaModels) {
    return new PeftCausalLm(method, null, null, null, model, dtype, replicaModels);
  }

  /**
   * @param lora required for lora and qlora, ignored otherwise
   * @param ia3  required for ia3, ignored otherwise
   * @param seed LoRA's A init and dropout masks
   */
  public static PeftCausalLm create(Method method, LoraConfig lora, Ia3Config ia3, Base base, DataType dtype,
                                    long seed) {
    return create(method, lora, ia3, null, base, dtype, seed);
  }

  /**
   * Any method; the settings of other methods are ignored (may be null).
   *
   * @param prompt required for prompt_tuning and prefix_tuning
   * @param seed   LoRA's A init and dropout masks; the random init of prompt learning's virtual tokens
   */
  public static PeftCausalLm create(Method method, LoraConfig lora, Ia3Config ia3, PromptConfig prompt, Base base,
                                    DataType dtype, long seed) {
    if (method == Method.HEAD) {
      throw new IllegalArgumentException("method head trains a classification head, which a causal LM does not have;"
          + " use lora, qlora, ia3, prompt_tuning, prefix_tuning or full");
    }
    if (method.usesPrompt() && prompt == null) throw new IllegalArgumentException("method " + method.key() + " needs a prompt section");
    if (method.usesLora() && lora == null) throw new IllegalArgumentException("method " + method.key() + " needs a lora section");
    if (method == Method.IA3 && ia3 == null) throw new IllegalArgumentException("method ia3 needs an ia3 section");
    CausalLm model = base.build(method == Method.FULL);
    if (method == Method.QLORA) Qlora.quantizeBase(model, dtype);    // lm_head stays full precision, as in QLoRA
    apply(method, lora, ia3, prompt, model, dtype, seed);
    IntFunction<CausalLm> replicaModels = k -> {
      CausalLm twin = model.twin(method == Method.FULL);   // null for QLoRA: quantized layers are not shared
      return twin == null ? null : apply(method, lora, ia3, prompt, twin, dtype, seed + k);   // own dropout draws
    };
    return new PeftCausalLm(method, method.usesLora() ? lora : null, method == Method.IA3 ? ia3 : null,
        method.usesPrompt() ? prompt : null, model, dtype, replicaModels);
  }

  private static CausalLm apply(Method method, LoraConfig lora, Ia3Config ia3, PromptConfig prompt, CausalLm model,
                                DataType dtype, long seed) {
    if (method.usesLora()) {
      Lora.inject(withHead(model, lora.targetModules()), lora, dtype, seed);
      BaseTensorsToTrain.unfreeze(model, lora);   // lora.bias and lora.modules_to_save
    }
    if (method == Method.IA3) Ia3.inject(withHead(model, ia3.targetModules()), ia3, dtype);
    if (method == Method.PROMPT_TUNING) PromptTuning.inject(model, prompt, dtype, seed);
    if (method == Method.PREFIX_TUNING) PrefixTuning.inject(model, prompt, dtype, seed);
    return model;
  }

  /**
   * The model's linears plus {@code lm_head}, so that naming it targets it; {@code all-linear} sees the linears
   * alone (PEFT excludes the output layer from it).
   */
  static LinearModules withHead(CausalLm model, List<String> targets) {
    if (targets.size() == 1 && targets.get(0).equals(Lora.ALL_LINEAR)) return model;
    return new LinearModules() {
      @Override
      public List<LinearLayer> linears() {
        List<LinearLayer> all = new ArrayList<>(model.linears());
        all.add(model.head());
        return all;
      }

      @Override
      public void mapLinears(UnaryOperator<LinearLayer> f) {
        model.mapLinears(f);
        model.mapHead(f);
      }
    };
  }

  /** PEFT's default IA3 targets for the model family. */
  public static Ia3Config defaultIa3(CausalLmConfig c) {
    return c.isGpt2() ? Ia3Config.gpt2Defaults() : Ia3Config.llamaDefaults();
  }

  @Override public Method method() { return method; }
  public LoraConfig lora() { return lora; }
  public Ia3Config ia3() { return ia3; }
  public PromptConfig prompt() { return prompt; }
  public CausalLm model() { return model; }
  @Override public ParamSet params() { return params; }
  @Override public long totalCount() { return totalParams; }

  @Override
  public double trainStep(LmBatch mb, double scale) {
    return model.trainStep(mb.ids(), mb.mask(), mb.labels(), scale);
  }

  @Override
  public synchronized void setTraining(boolean training) {
    this.training = training;
    for (PeftCausalLm r : replicas) for (LoraLinear l : r.loraLayers()) l.dropout().setTraining(training);
  }

  /**
   * This model and {@code n - 1} replicas built on first use (kept): each shares the frozen tensors and the
   * trainable values, has its own activations and gradient buffer, and follows this model's training mode,
   * gradient checkpointing and loss chunking. Empty where replicas cannot be built (QLoRA's quantized layers).
   */
  @Override
  public synchronized List<PeftCausalLm> replicas(int n) {
    while (replicas.size() < n) {
      CausalLm m = replicaModels == null ? null : replicaModels.apply(replicas.size());
      if (m == null) return List.of();
      replicas.add(new PeftCausalLm(this, m));
    }
    for (PeftCausalLm r : replicas.subList(1, replicas.size())) {
      r.model.setGradientCheckpointing(model.gradientCheckpointing());
      r.model.setLossChunkRows(model.lossChunkRows());
    }
    setTraining(training);
    return List.copyOf(replicas.subList(0, n));
  }

  /** Mean token cross-entropy and perplexity over the target tokens of {@code batches} (dropout off). */
  public LmEvalResult evaluate(List<LmBatch> batches) {
    setTraining(false);
    long start = System.nanoTime(), tokens = 0;
    double lossSum = 0;
    for (LmBatch b : batches) {
      try (var ws = Nd4jSetup.stepWorkspace()) {
        var r = model.evaluate(b.ids(), b.mask(), b.labels());
        lossSum += r.lossSum();
        tokens += r.tokens();
      }
    }
    return LmEvalResult.of(lossSum, tokens, (System.nanoTime() - start) / 1_000_000);
  }

  /** The LoRA-wrapped modules, {@code lm_head} included when targeted. */
  public List<LoraLinear> loraLayers() {
    List<LoraLinear> out = new ArrayList<>();
    for (LinearLayer l : model.linears()) if (l instanceof LoraLinear ll) out.add(ll);
    if (model.head() instanceof LoraLinear ll) out.add(ll);
    return out;
  }
}
