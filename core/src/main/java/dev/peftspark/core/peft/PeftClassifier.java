package dev.peftspark.core.peft;

import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.ia3.Ia3;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.Lora;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.lora.LoraLinear;
import dev.peftspark.core.peft.qlora.Qlora;
import dev.peftspark.core.quant.QuantizedLinear;
import dev.peftspark.core.train.TokenBatch;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

/**
 * A classifier on a base encoder with one PEFT method applied: the model, its trainable {@link ParamSet} (adapters
 * and head; everything for {@code full}), and what is needed to save it in Hugging Face PEFT layout.
 */
public final class PeftClassifier implements PeftModel<TokenBatch> {
  private final Method method;
  private final LoraConfig lora;          // null unless method is lora or qlora
  private final Ia3Config ia3;            // null unless method == IA3
  private final BertClassifier model;
  private final ParamSet params;
  private final long totalParams;

  private PeftClassifier(Method method, LoraConfig lora, Ia3Config ia3, BertClassifier model, DataType dtype) {
    this.method = method;
    this.lora = lora;
    this.ia3 = ia3;
    this.model = model;
    this.params = new ParamSet(model.trainableParams(), dtype);
    long quantized = model.encoder().linears().stream().map(LinearLayer::base)
        .filter(l -> l instanceof QuantizedLinear).mapToLong(l -> ((QuantizedLinear) l).packedWeight().size()).sum();
    this.totalParams = model.params().stream().mapToLong(Param::length).sum() + quantized;
  }

  /** {@link #create(Method, LoraConfig, Ia3Config, BertConfig, Map, int, Pooling.Mode, DataType, long)} with
   *  PEFT's IA3 defaults for BERT. */
  public static PeftClassifier create(Method method, LoraConfig lora, BertConfig cfg, Map<String, INDArray> base,
                                      int numLabels, Pooling.Mode pooling, DataType dtype, long seed) {
    return create(method, lora, Ia3Config.bertDefaults(), cfg, base, numLabels, pooling, dtype, seed);
  }

  /**
   * @param base weights under Hugging Face BertModel names; frozen ones are used in place, never copied
   */
  public static PeftClassifier create(Method method, LoraConfig lora, Ia3Config ia3, BertConfig cfg,
                                      Map<String, INDArray> base, int numLabels, Pooling.Mode pooling, DataType dtype,
                                      long seed) {
    if (numLabels < 2) throw new IllegalArgumentException("classification needs at least 2 labels, got " + numLabels);
    BertEncoder encoder = BertEncoder.fromWeights(cfg, base, dtype, method == Method.FULL);
    if (method.usesLora() && lora != null && !lora.bias().equals("none")) {
      encoder = BertEncoder.fromWeights(cfg, base, dtype, trainableBiases(encoder, lora));
    }
    if (method == Method.QLORA) Qlora.quantizeBase(encoder, dtype);
    if (method.usesLora()) {
      if (lora == null) throw new IllegalArgumentException("method " + method.key() + " needs a lora section");
      Lora.inject(encoder, lora, dtype, seed);
    }
    if (method == Method.IA3) {
      if (ia3 == null) throw new IllegalArgumentException("method ia3 needs an ia3 section");
      Ia3.inject(encoder, ia3, dtype);
    }
    var head = BertClassifier.newHead(numLabels, cfg.hiddenSize(), dtype, seed);
    return new PeftClassifier(method, method.usesLora() ? lora : null, method == Method.IA3 ? ia3 : null,
        new BertClassifier(encoder, pooling, head, dtype), dtype);
  }

  /**
   * PEFT's LoRA bias option: "all" trains every tensor with "bias" in its name (LayerNorm biases too), "lora_only"
   * the biases of the adapted linears.
   */
  private static java.util.function.Predicate<String> trainableBiases(BertEncoder encoder, LoraConfig lora) {
    if (lora.bias().equals("all")) return name -> name.contains("bias");
    var targets = Lora.targets(encoder.linears().stream().map(LinearLayer::name).toList(), lora);
    return name -> name.endsWith(".bias") && targets.contains(name.substring(0, name.length() - ".bias".length()));
  }

  @Override public Method method() { return method; }
  public LoraConfig lora() { return lora; }
  public Ia3Config ia3() { return ia3; }
  public BertClassifier model() { return model; }
  @Override public ParamSet params() { return params; }
  @Override public long trainableCount() { return params.size(); }
  @Override public long totalCount() { return totalParams; }

  @Override
  public double trainStep(TokenBatch mb, double scale) {
    return model.trainStep(mb.ids(), mb.mask(), mb.labels(), scale);
  }

  /** Dropout on (training) or off (evaluation). */
  @Override
  public void setTraining(boolean training) {
    for (LinearLayer l : model.encoder().linears()) if (l instanceof LoraLinear ll) ll.dropout().setTraining(training);
  }

  public List<LoraLinear> loraLayers() {
    return model.encoder().linears().stream().filter(l -> l instanceof LoraLinear).map(l -> (LoraLinear) l).toList();
  }
}
