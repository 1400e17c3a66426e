package dev.peftspark.core.model;

import dev.peftspark.core.generate.KvCache;
import dev.peftspark.core.io.HfCheckpoint;
import dev.peftspark.core.nn.CausalAttention;
import dev.peftspark.core.nn.CausalMask;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.LmHeadLoss;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.PromptRows;
import dev.peftspark.core.nn.RmsNorm;
import dev.peftspark.core.nn.Rope;
import dev.peftspark.core.nn.SwiGlu;
import dev.peftspark.core.nn.TokenEmbedding;
import dev.peftspark.core.quant.HalfLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * A LLaMA-family causal LM ({@code LlamaForCausalLM}, Mistral, Qwen2) built from tensors named as Hugging Face
 * stores them: {@code model.embed_tokens.weight}, {@code model.layers.N.self_attn.{q,k,v,o}_proj},
 * {@code model.layers.N.mlp.{gate,up,down}_proj}, {@code model.layers.N.{input,post_attention}_layernorm},
 * {@code model.norm.weight} and {@code lm_head.weight} (absent when the embeddings are tied).
 */
public final class LlamaModel implements CausalLm {
  private final LlamaConfig config;
  private final DataType dtype;
  private final TokenEmbedding embed;
  private final List<LlamaLayer> layers;
  private final RmsNorm norm;
  private LinearLayer head;   // replaceable: LoRA may wrap lm_head
  private final Rope rope;
  private final List<Param> base;
  private int chunkRows;
  private final VirtualTokens virtual = new VirtualTokens();   // prompt or prefix tuning
  private boolean checkpointing;
  private final LayerCheckpoints checkpoints = new LayerCheckpoints();

  private LlamaModel(LlamaConfig config, DataType dtype, TokenEmbedding embed, List<LlamaLayer> layers, RmsNorm norm,
                     LinearLayer head, Rope rope, List<Param> base) {
    this.config = config;
    this.dtype = dtype;
    this.embed = embed;
    this.layers = layers;
    this.norm = norm;
    this.head = head;
    this.rope = rope;
    this.base = base;
    this.chunkRows = LmHeadLoss.defaultChunkRows(config.vocabSize());
  }

  /**
   * @param weights   base tensors by Hugging Face name, cast to {@code dtype} when they differ
   * @param trainable true for full fine-tuning (every base tensor becomes a trainable {@link Param})
   */
  public static LlamaModel fromWeights(LlamaConfig c, Map<String, INDArray> weights, DataType dtype, boolean trainable) {
    return fromWeights(c, weights, dtype, trainable, UnaryOperator.identity());
  }

  /**
   * @param layerLinears applied to every layer linear as it is built (not the head), e.g. NF4 quantization; a
   *                     replaced linear's full-precision weight is then neither kept nor in {@link #stateDict()}
   */
  public static LlamaModel fromWeights(LlamaConfig c, Map<String, INDArray> weights, DataType dtype, boolean trainable,
                                       UnaryOperator<LinearLayer> layerLinears) {
    return fromWeights(c, weights, dtype, trainable, layerLinears, dtype);
  }

  /**
   * @param tables storage type of the embedding table and of an untied {@code lm_head}: {@code dtype}, or
   *               BFLOAT16/HALF for a frozen base (QLoRA keeps them in 16 bits; rows are widened when read)
   */
  public static LlamaModel fromWeights(LlamaConfig c, Map<String, INDArray> weights, DataType dtype, boolean trainable,
                                       UnaryOperator<LinearLayer> layerLinears, DataType tables) {
    Nd4jSetup.ensure();
    if (tables != dtype && !HalfLinear.isHalf(tables))
      throw new IllegalArgumentException("tables are stored in the compute type " + dtype + " or in 16 bits (BFLOAT16, HALF), not " + tables);
    var w = new HfWeights(weights, dtype, trainable, layerLinears);
    int h = c.hiddenSize(), q = c.numAttentionHeads() * c.headDim(), kv = c.kvDim(), inter = c.intermediateSize();
    TokenEmbedding embed = new TokenEmbedding("model.embed_tokens", w.table("model.embed_tokens.weight", tables, c.vocabSize(), h), dtype);
    Rope rope = new Rope(c.headDim(), c.ropeInvFreq());
    List<LlamaLayer> layers = new ArrayList<>();
    for (int i = 0; i < c.numHiddenLayers(); i++) {
      String p = "model.layers." + i + ".";
      var attention = new CausalAttention(
          w.layerLinear(p + "self_attn.q_proj", q, h, c.attentionBias()), w.layerLinear(p + "self_attn.k_proj", kv, h, c.attentionBias()),
          w.layerLinear(p + "self_attn.v_proj", kv, h, c.attentionBias()), w.layerLinear(p + "self_attn.o_proj", h, q, c.outputBias()),
          c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), rope);
      var mlp = new SwiGlu(w.layerLinear(p + "mlp.gate_proj", inter, h, c.mlpBias()), w.layerLinear(p + "mlp.up_proj", inter, h, c.mlpBias()),
          w.layerLinear(p + "mlp.down_proj", h, inter, c.mlpBias()));
      layers.add(new LlamaLayer(new RmsNorm(p + "input_layernorm", w.param(p + "input_layernorm.weight", h), c.rmsNormEps()),
          attention, new RmsNorm(p + "post_attention_layernorm", w.param(p + "post_attention_layernorm.weight", h), c.rmsNormEps()),
          mlp));
    }
    RmsNorm norm = new RmsNorm("model.norm", w.param("model.norm.weight", h), c.rmsNormEps());
    LinearLayer head;
    if (tables != dtype) {
      head = new HalfLinear("lm_head", c.tieWordEmbeddings() ? embed.table() : w.table("lm_head.weight", tables, c.vocabSize(), h));
    } else {
      head = c.tieWordEmbeddings() ? new Linear("lm_head", embed.table(), null) : w.linear("lm_head", c.vocabSize(), h, false);
    }
    return new LlamaModel(c, dtype, embed, layers, norm, head, rope, w.made());
  }

  /** Reads {@code config.json} and the safetensors weights of a Hugging Face model directory. */
  public static LlamaModel load(Path dir, DataType dtype, boolean trainable) throws IOException {
    LlamaConfig c = LlamaConfig.fromJson(dir.resolve("config.json"));
    return fromWeights(c, HfCheckpoint.readWeights(dir), dtype, trainable);
  }

  /** A model of this shape with Hugging Face's initialisation: N(0, initializer_range²) matrices, norms 1, biases 0. */
  public static LlamaModel random(LlamaConfig c, DataType dtype, long seed, boolean trainable) {
    return fromWeights(c, randomWeights(c, dtype, seed), dtype, trainable);
  }

  /**
   * A random model whose tensors are generated one at a time as the model takes them, each layer linear passed
   * through {@code layerLinears} at once: with quantization, the full-precision model never exists as a whole.
   */
  public static LlamaModel random(LlamaConfig c, DataType dtype, long seed, boolean trainable,
                                  UnaryOperator<LinearLayer> layerLinears) {
    return random(c, dtype, seed, trainable, layerLinears, dtype);
  }

  /** As above, the embedding table and head stored as {@code tables} (see {@link #fromWeights}). */
  public static LlamaModel random(LlamaConfig c, DataType dtype, long seed, boolean trainable,
                                  UnaryOperator<LinearLayer> layerLinears, DataType tables) {
    return fromWeights(c, randomTensors(c, dtype, seed, tables), dtype, trainable, layerLinears, tables);
  }

  public static Map<String, INDArray> randomWeights(LlamaConfig c, DataType dtype, long seed) {
    return new LinkedHashMap<>(randomTensors(c, dtype, seed));
  }

  /** The random weights as a map that generates each tensor when it is read (and keeps none). */
  static Map<String, INDArray> randomTensors(LlamaConfig c, DataType dtype, long seed) { return randomTensors(c, dtype, seed, dtype); }

  /** {@code tables}: the type the embedding and head are generated in (16 bits: never in float as a whole). */
  static Map<String, INDArray> randomTensors(LlamaConfig c, DataType dtype, long seed, DataType tables) {
    GeneratedTensors w = new GeneratedTensors();
    double std = c.initializerRange();
    int h = c.hiddenSize(), q = c.numAttentionHeads() * c.headDim(), kv = c.kvDim(), inter = c.intermediateSize();
    w.put("model.embed_tokens.weight", () -> HfWeights.normal("model.embed_tokens.weight", seed, std, tables, c.vocabSize(), h));
    for (int i = 0; i < c.numHiddenLayers(); i++) {
      String p = "model.layers." + i + ".";
      randomLinear(w, p + "self_attn.q_proj", q, h, c.attentionBias(), seed, std, dtype);
      randomLinear(w, p + "self_attn.k_proj", kv, h, c.attentionBias(), seed, std, dtype);
      randomLinear(w, p + "self_attn.v_proj", kv, h, c.attentionBias(), seed, std, dtype);
      randomLinear(w, p + "self_attn.o_proj", h, q, c.outputBias(), seed, std, dtype);
      randomLinear(w, p + "mlp.gate_proj", inter, h, c.mlpBias(), seed, std, dtype);
      randomLinear(w, p + "mlp.up_proj", inter, h, c.mlpBias(), seed, std, dtype);
      randomLinear(w, p + "mlp.down_proj", h, inter, c.mlpBias(), seed, std, dtype);
      w.put(p + "input_layernorm.weight", () -> Nd4j.ones(dtype, h));
      w.put(p + "post_attention_layernorm.weight", () -> Nd4j.ones(dtype, h));
    }
    w.put("model.norm.weight", () -> Nd4j.ones(dtype, h));
    if (!c.tieWordEmbeddings()) randomLinear(w, "lm_head", c.vocabSize(), h, false, seed, std, tables);
    return w;
  }

  private static void randomLinear(GeneratedTensors w, String module, int out, int in, boolean bias, long seed,
                                   double std, DataType dtype) {
    w.put(module + ".weight", () -> HfWeights.normal(module + ".weight", seed, std, dtype, out, in));
    if (bias) w.put(module + ".bias", () -> Nd4j.zeros(dtype, out));
  }

  public LlamaConfig config() { return config; }
  public List<LlamaLayer> layers() { return layers; }
  public TokenEmbedding embedding() { return embed; }
  public RmsNorm norm() { return norm; }
  @Override public DataType dtype() { return dtype; }
  @Override public int vocabSize() { return config.vocabSize(); }
  @Override public LinearLayer head() { return head; }

  @Override
  public void mapHead(UnaryOperator<LinearLayer> f) { head = f.apply(head); }
  @Override public int lossChunkRows() { return chunkRows; }

  @Override
  public void setLossChunkRows(int rows) {
    if (rows < 1) throw new IllegalArgumentException("loss chunk rows must be >= 1, got " + rows);
    this.chunkRows = rows;
  }

  @Override
  public CausalMask mask(int[][] mask) {
    return virtual.mask(mask, config.slidingWindow(), dtype);
  }

  @Override public void setPrompt(Param prompt) { virtual.setPrompt(prompt, config.hiddenSize()); }

  @Override
  public void setPrefix(Param prefix) {
    virtual.setPrefix(prefix, prefixWidth());
    for (int i = 0; i < layers.size(); i++) layers.get(i).attention().setPrefix(prefix, i);
  }

  @Override public int prefixWidth() { return layers.size() * 2 * config.kvDim(); }
  @Override public Param inputEmbeddings() { return embed.table(); }
  @Override public int virtualTokens() { return virtual.count(); }

  @Override
  public INDArray hidden(int[][] ids, CausalMask mask) {
    int[] flat = CausalLm.flatten(ids);
    virtual.check(ids, mask);
    Rope.Tables tables = rope.tables(mask.positions(), dtype);
    INDArray x = embed.forward(flat);
    x = virtual.prepend(x, ids.length);
    if (checkpointing) {
      x = checkpoints.forward(layers.stream().map(l -> l.checkpointed(mask, tables)).toList(), x);
    } else {
      for (LlamaLayer layer : layers) x = layer.forward(x, mask, tables);
    }
    return norm.forward(x);
  }

  @Override public boolean gradientCheckpointing() { return checkpointing; }

  @Override public void setGradientCheckpointing(boolean on) { checkpointing = on; }

  @Override public int maxPositions() { return config.maxPositionEmbeddings(); }

  @Override
  public KvCache newCache(int capacity) {
    if (capacity > maxPositions())
      throw new IllegalArgumentException("a cache of " + capacity + " tokens exceeds the model's " + maxPositions() + " positions (max_position_embeddings)");
    KvCache cache = new KvCache(layers.size(), config.numKeyValueHeads(), config.headDim(), capacity, dtype);
    for (int i = 0; i < layers.size(); i++) layers.get(i).attention().prefill(cache.layer(i));
    return cache;
  }

  @Override
  public INDArray hiddenCached(int[] ids, KvCache cache) {
    int nv = cache.length() == 0 ? virtual.promptRows() : 0;   // prompt tuning: the virtual rows enter with the first prefill
    cache.checkRoom(nv + ids.length);
    int[] positions = new int[nv + ids.length];
    for (int i = 0; i < positions.length; i++) positions[i] = cache.length() + i;
    Rope.Tables tables = rope.tables(positions, dtype);
    INDArray x = embed.forward(ids);
    if (nv > 0) x = PromptRows.prepend(virtual.prompt(), x, 1);
    for (int i = 0; i < layers.size(); i++) x = layers.get(i).step(x, cache.layer(i), tables, config.slidingWindow());
    return PromptRows.dropVirtual(norm.forward(x), nv);
  }

  @Override
  public void backwardHidden(INDArray dHidden) {
    int lowest = embed.table().isTrainable() || virtual.promptTrains() ? -1 : layers.size();
    if (virtual.prefixTrains()) lowest = Math.min(lowest, 0);   // every layer reads its prefix
    for (int i = 0; i < layers.size() && lowest == layers.size(); i++) if (layers.get(i).hasTrainable()) lowest = i;
    INDArray d = norm.backward(dHidden);
    if (checkpointing) {
      if (lowest < layers.size()) d = checkpoints.backward(d, Math.max(0, lowest), lowest == -1);
    } else {
      for (int i = layers.size() - 1; i >= 0 && i >= lowest; i--) d = layers.get(i).backward(d, i > lowest);
    }
    if (lowest != -1) return;
    d = virtual.backward(d);
    if (embed.table().isTrainable()) embed.backward(d);
  }

  @Override
  public void mapLinears(UnaryOperator<LinearLayer> f) {
    for (LlamaLayer layer : layers) layer.mapLinears(f);
  }

  @Override
  public List<LinearLayer> linears() {
    List<LinearLayer> all = new ArrayList<>();
    for (LlamaLayer layer : layers) all.addAll(layer.linears());
    return all;
  }

  @Override
  public List<Param> params() {
    LinkedHashSet<Param> all = new LinkedHashSet<>();
    all.add(embed.table());
    for (LlamaLayer layer : layers) all.addAll(layer.params());
    all.add(norm.weight());
    all.addAll(head.params());
    virtual.addParams(all);
    return List.copyOf(all);
  }

  @Override
  public Map<String, INDArray> stateDict() { return CausalLm.stateDict(base); }

  @Override
  public CausalLm twin(boolean trainable) {
    if (!plainLinears()) return null;
    LlamaModel t = fromWeights(config, stateDict(), dtype, trainable, UnaryOperator.identity(), embed.table().value().dataType());
    t.setGradientCheckpointing(checkpointing);
    t.setLossChunkRows(chunkRows);
    return t;
  }
}
