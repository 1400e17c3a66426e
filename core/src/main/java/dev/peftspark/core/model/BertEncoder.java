package dev.peftspark.core.model;

import dev.peftspark.core.nn.Embeddings;
import dev.peftspark.core.nn.LayerNorm;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.SelfAttention;
import dev.peftspark.core.quant.DequantBuffer;
import dev.peftspark.core.quant.OffHeapNf4;
import dev.peftspark.core.quant.QuantizedLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.UnaryOperator;

/**
 * A BERT encoder built from tensors named as in a Hugging Face {@code BertModel} checkpoint
 * ({@code embeddings.word_embeddings.weight}, {@code encoder.layer.0.attention.self.query.weight}, ...), so
 * loading is a key lookup. {@code ids [B][T], mask [B][T] -> hidden [B*T, H]}.
 */
public final class BertEncoder implements dev.peftspark.core.nn.LinearModules {
  /** Added to attention scores of padding keys (exp underflows to exactly 0 after the max is subtracted). */
  static final double MASKED = -1e9;

  private final BertConfig config;
  private final Embeddings embeddings;
  private final List<BertLayer> layers;
  private Param prefix;                  // prefix tuning's [nv, L*2*H] keys/values (null: none)
  private int batch, tokens;             // of the last forward (prompt tuning's backward re-pads to nv + tokens)

  private BertEncoder(BertConfig config, Embeddings embeddings, List<BertLayer> layers) {
    this.config = config;
    this.embeddings = embeddings;
    this.layers = layers;
  }

  /**
   * @param weights   base tensors by Hugging Face name, cast to {@code dtype} when they differ
   * @param trainable true for full fine-tuning (every base tensor becomes a trainable {@link Param})
   */
  public static BertEncoder fromWeights(BertConfig cfg, Map<String, INDArray> weights, DataType dtype, boolean trainable) {
    return fromWeights(cfg, weights, dtype, name -> trainable);
  }

  /** @param trainable which base tensors (by Hugging Face name) become trainable, e.g. the biases for LoRA's bias option */
  public static BertEncoder fromWeights(BertConfig cfg, Map<String, INDArray> weights, DataType dtype,
                                        java.util.function.Predicate<String> trainable) {
    dev.peftspark.core.nn.Nd4jSetup.ensure();
    var w = new WeightLookup(weights, dtype, trainable, new DequantBuffer(dtype));
    int h = cfg.hiddenSize();
    Embeddings emb = new Embeddings(
        w.param("embeddings.word_embeddings.weight", cfg.vocabSize(), h),
        w.param("embeddings.position_embeddings.weight", cfg.maxPositionEmbeddings(), h),
        w.param("embeddings.token_type_embeddings.weight", cfg.typeVocabSize(), h),
        w.norm("embeddings.LayerNorm", h, cfg.layerNormEps()));
    List<BertLayer> layers = new ArrayList<>();
    for (int i = 0; i < cfg.numHiddenLayers(); i++) {
      String p = "encoder.layer." + i + ".";
      var attention = new SelfAttention(
          w.linear(p + "attention.self.query", h, h), w.linear(p + "attention.self.key", h, h),
          w.linear(p + "attention.self.value", h, h), w.linear(p + "attention.output.dense", h, h),
          cfg.numAttentionHeads());
      layers.add(new BertLayer(attention, w.norm(p + "attention.output.LayerNorm", h, cfg.layerNormEps()),
          w.linear(p + "intermediate.dense", cfg.intermediateSize(), h),
          w.linear(p + "output.dense", h, cfg.intermediateSize()),
          w.norm(p + "output.LayerNorm", h, cfg.layerNormEps())));
    }
    return new BertEncoder(cfg, emb, layers);
  }

  public BertConfig config() { return config; }
  public List<BertLayer> layers() { return layers; }
  public Embeddings embeddings() { return embeddings; }

  /** Prefix tuning: every layer's attention gets its slice of {@code prefix [nv, L*2*H]}. */
  public void setPrefix(Param prefix) {
    this.prefix = prefix;
    for (int i = 0; i < layers.size(); i++) layers.get(i).attention().setPrefix(prefix, i);
  }

  /**
   * Hidden states {@code [B*T, H]} of the real tokens. Prompt tuning's virtual tokens run through every layer in
   * front of each row (attending and attended to, never masked) and are dropped from the output.
   */
  public INDArray forward(int[][] ids, int[][] mask) {
    int batch = ids.length, tokens = ids[0].length, nv = embeddings.virtualTokens(), seq = nv + tokens;
    this.batch = batch;
    this.tokens = tokens;
    INDArray x = embeddings.forward(ids);
    INDArray maskBias = maskBias(mask, x.dataType());
    if (nv > 0) maskBias = Nd4j.concat(1, Nd4j.zeros(x.dataType(), batch, nv), maskBias);
    for (BertLayer layer : layers) x = layer.forward(x, maskBias, batch, seq);
    if (nv == 0) return x;
    return x.reshape('c', batch, seq, x.size(1)).get(NDArrayIndex.all(), NDArrayIndex.interval(nv, seq), NDArrayIndex.all())
        .dup('c').reshape('c', (long) batch * tokens, x.size(1));
  }

  /** Backpropagates dL/dhidden, stopping below the lowest layer that has trainable parameters. */
  public void backward(INDArray dHidden) {
    int lowest = embeddings.isTrainable() ? -1 : layers.size();
    for (int i = 0; i < layers.size() && lowest == layers.size(); i++) if (layers.get(i).hasTrainable()) lowest = i;
    INDArray d = dHidden;
    int nv = embeddings.virtualTokens();
    if (nv > 0) {   // the virtual positions were dropped from the output: their gradient there is 0
      long h = dHidden.size(1);
      d = Nd4j.zeros(dHidden.dataType(), batch, nv + tokens, h);
      d.get(NDArrayIndex.all(), NDArrayIndex.interval(nv, nv + tokens), NDArrayIndex.all())
          .assign(dHidden.reshape('c', batch, tokens, h));
      d = d.reshape('c', (long) batch * (nv + tokens), h);
    }
    for (int i = layers.size() - 1; i >= 0 && i >= lowest; i--) d = layers.get(i).backward(d, i > lowest);
    if (lowest == -1) embeddings.backward(d);
  }

  /** Replaces every linear module (PEFT injection); {@code f} returns its argument for modules it leaves alone. */
  public void mapLinears(UnaryOperator<LinearLayer> f) {
    for (BertLayer layer : layers) layer.mapLinears(f);
  }

  public List<LinearLayer> linears() {
    List<LinearLayer> all = new ArrayList<>();
    for (BertLayer layer : layers) all.addAll(layer.linears());
    return all;
  }

  public List<Param> params() {
    List<Param> all = new ArrayList<>(List.of(embeddings.word(), embeddings.position(), embeddings.tokenType(),
        embeddings.norm().gamma(), embeddings.norm().beta()));
    if (embeddings.prompt() != null) all.add(embeddings.prompt());
    if (prefix != null) all.add(prefix);
    for (BertLayer layer : layers) all.addAll(layer.params());
    return all;
  }

  static INDArray maskBias(int[][] mask, DataType dtype) {
    int batch = mask.length, seq = mask[0].length;
    double[] bias = new double[batch * seq];
    for (int b = 0; b < batch; b++) for (int t = 0; t < seq; t++) bias[b * seq + t] = mask[b][t] != 0 ? 0 : MASKED;
    return Nd4j.createFromArray(bias).reshape(batch, seq).castTo(dtype);
  }

  /**
   * QLoRA's base for {@code cfg}: every layer linear NF4 with double quantization, every other tensor float (see
   * {@link PackedTensors}); the same NF4 bytes as {@code Qlora.quantizeBase} on a model built from {@code weights}.
   */
  public static PackedTensors packed(BertConfig cfg, Map<String, INDArray> weights) {
    BertEncoder e = fromWeights(cfg, weights, DataType.FLOAT, false);
    DequantBuffer scratch = new DequantBuffer(DataType.FLOAT);
    e.mapLinears(l -> l instanceof QuantizedLinear ? l : QuantizedLinear.of((Linear) l, scratch));
    return PackedTensors.of(e.params(), e.linears());
  }

  /**
   * Looks tensors up by name, checks shapes, and says which names exist when one is missing; a layer linear of a
   * {@link PackedTensors} is built on its shared NF4 weight ({@code scratch}: the model's dequantization buffer).
   */
  private record WeightLookup(Map<String, INDArray> weights, DataType dtype,
                              java.util.function.Predicate<String> trainable, DequantBuffer scratch) {
    Param param(String name, long... shape) {
      INDArray t = weights.get(name);
      if (t == null) {
        throw new IllegalArgumentException("base model has no tensor '" + name + "'; it has " + weights.size()
            + " tensors, e.g. " + new TreeSet<>(weights.keySet()).stream().limit(8).toList());
      }
      if (!Arrays.equals(t.shape(), shape)) {
        throw new IllegalArgumentException("tensor '" + name + "' has shape " + Arrays.toString(t.shape())
            + ", expected " + Arrays.toString(shape));
      }
      INDArray v = t.dataType() == dtype ? t : t.castTo(dtype);
      return trainable.test(name) ? Param.trainable(name, v) : Param.frozen(name, v);
    }

    LinearLayer linear(String module, int out, int in) {
      OffHeapNf4 nf4 = weights instanceof PackedTensors p ? p.linearWeight(module, out, in, trainable.test(module + ".weight")) : null;
      if (nf4 == null) return new Linear(module, param(module + ".weight", out, in), param(module + ".bias", out));
      return new QuantizedLinear(module, out, in, nf4, param(module + ".bias", out), scratch);
    }

    LayerNorm norm(String module, int h, double eps) {
      return new LayerNorm(module, param(module + ".weight", h), param(module + ".bias", h), eps);
    }
  }
}
