package dev.peftspark.core.model;

import dev.peftspark.core.generate.KvCache;
import dev.peftspark.core.io.HfCheckpoint;
import dev.peftspark.core.nn.CausalAttention;
import dev.peftspark.core.nn.CausalMask;
import dev.peftspark.core.nn.LayerNorm;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.LmHeadLoss;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.PromptRows;
import dev.peftspark.core.nn.TokenEmbedding;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * {@code GPT2LMHeadModel} on Hugging Face names: {@code transformer.wte/wpe}, {@code transformer.h.N.ln_1},
 * {@code attn.c_attn} (fused q|k|v), {@code attn.c_proj}, {@code ln_2}, {@code mlp.c_fc}, {@code mlp.c_proj},
 * {@code transformer.ln_f}, head tied to {@code wte}. Conv1D weights are stored {@code [in, out]}; they are
 * transposed once at load into {@link Linear}'s {@code [out, in]} (and back in {@link #stateDict}), so LoRA's
 * A {@code [r, in]} and B {@code [out, r]} are PEFT's whatever the storage ({@code fan_in_fan_out} matters
 * only when merging). Checkpoints saved without the {@code transformer.} prefix (openai-community/gpt2) load too.
 */
public final class Gpt2Model implements CausalLm {
  private static final List<String> CONV1D = List.of("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj");

  private final Gpt2Config config;
  private final DataType dtype;
  private final TokenEmbedding wte, wpe;
  private final List<Gpt2Layer> layers;
  private final LayerNorm lnF;
  private LinearLayer head;   // replaceable: LoRA may wrap lm_head
  private final List<Param> base;
  private int chunkRows;
  private final VirtualTokens virtual = new VirtualTokens();   // prompt or prefix tuning
  private boolean checkpointing;
  private final LayerCheckpoints checkpoints = new LayerCheckpoints();

  private Gpt2Model(Gpt2Config config, DataType dtype, TokenEmbedding wte, TokenEmbedding wpe, List<Gpt2Layer> layers,
                    LayerNorm lnF, Linear head, List<Param> base) {
    this.config = config;
    this.dtype = dtype;
    this.wte = wte;
    this.wpe = wpe;
    this.layers = layers;
    this.lnF = lnF;
    this.head = head;
    this.base = base;
    this.chunkRows = LmHeadLoss.defaultChunkRows(config.vocabSize());
  }

  public static Gpt2Model fromWeights(Gpt2Config c, Map<String, INDArray> stored, DataType dtype, boolean trainable) {
    return fromWeights(c, stored, dtype, trainable, UnaryOperator.identity());
  }

  /**
   * @param stored       checkpoint layout, or a {@link PackedTensors} (model layout already)
   * @param layerLinears applied to every layer linear as it is built (not the head), e.g. NF4 quantization; a
   *                     replaced linear's full-precision weight is then neither kept nor in {@link #stateDict()}
   */
  public static Gpt2Model fromWeights(Gpt2Config c, Map<String, INDArray> stored, DataType dtype, boolean trainable,
                                      UnaryOperator<LinearLayer> layerLinears) {
    return fromLinearLayout(c, stored instanceof PackedTensors ? stored : toLinearLayout(c, stored), dtype, trainable,
        layerLinears);
  }

  /** From tensors already in {@link Linear}'s layout (Conv1D weights {@code [out, in]}), as {@link #twin} reads them. */
  private static Gpt2Model fromLinearLayout(Gpt2Config c, Map<String, INDArray> linearLayout, DataType dtype,
                                            boolean trainable, UnaryOperator<LinearLayer> layerLinears) {
    Nd4jSetup.ensure();
    var w = new HfWeights(linearLayout, dtype, trainable, layerLinears);
    int h = c.nEmbd(), inner = c.nInner();
    TokenEmbedding wte = new TokenEmbedding("transformer.wte", w.param("transformer.wte.weight", c.vocabSize(), h));
    TokenEmbedding wpe = new TokenEmbedding("transformer.wpe", w.param("transformer.wpe.weight", c.nPositions(), h));
    List<Gpt2Layer> layers = new ArrayList<>();
    for (int i = 0; i < c.nLayer(); i++) {
      String p = "transformer.h." + i + ".";
      var attention = CausalAttention.fused(w.layerLinear(p + "attn.c_attn", 3 * h, h, true),
          w.layerLinear(p + "attn.c_proj", h, h, true), c.nHead(), c.headDim());
      layers.add(new Gpt2Layer(norm(w, p + "ln_1", h, c), attention, norm(w, p + "ln_2", h, c),
          w.layerLinear(p + "mlp.c_fc", inner, h, true), w.layerLinear(p + "mlp.c_proj", h, inner, true)));
    }
    LayerNorm lnF = norm(w, "transformer.ln_f", h, c);
    Linear head = c.tieWordEmbeddings() ? new Linear("lm_head", wte.table(), null) : w.linear("lm_head", c.vocabSize(), h, false);
    return new Gpt2Model(c, dtype, wte, wpe, layers, lnF, head, w.made());
  }

  private static LayerNorm norm(HfWeights w, String module, int h, Gpt2Config c) {
    return new LayerNorm(module, w.param(module + ".weight", h), w.param(module + ".bias", h), c.layerNormEpsilon());
  }

  /** True for a module stored as a Conv1D {@code [in, out]} (e.g. {@code transformer.h.0.attn.c_attn}): PEFT's fan_in_fan_out. */
  public static boolean isConv1D(String module) { return CONV1D.stream().anyMatch(m -> module.endsWith("." + m)); }

  /**
   * Adds the {@code transformer.} prefix where missing, drops the causal-mask buffers, transposes Conv1D weights:
   * each tensor when it is read, so a map that reads lazily ({@link dev.peftspark.core.io.HfCheckpoint#open}) stays lazy.
   */
  private static Map<String, INDArray> toLinearLayout(Gpt2Config c, Map<String, INDArray> stored) {
    GeneratedTensors out = new GeneratedTensors();
    for (String key : stored.keySet()) {
      String k = key.startsWith("transformer.") || key.startsWith("lm_head.") ? key : "transformer." + key;
      if (k.endsWith(".attn.bias") || k.endsWith(".attn.masked_bias")) continue;   // buffers, not parameters
      String conv = CONV1D.stream().filter(m -> k.startsWith("transformer.h.") && k.endsWith("." + m + ".weight")).findFirst().orElse(null);
      out.put(k, conv == null ? () -> stored.get(key) : () -> fromConv1D(c, k, conv, stored.get(key)));
    }
    return out;
  }

  /** A Conv1D weight {@code [in, out]} as a linear's {@code [out, in]}. */
  private static INDArray fromConv1D(Gpt2Config c, String k, String module, INDArray t) {
    int h = c.nEmbd();
    long in = module.equals("mlp.c_proj") ? c.nInner() : h;
    long o = switch (module) { case "attn.c_attn" -> 3L * h; case "mlp.c_fc" -> c.nInner(); default -> h; };
    if (!Arrays.equals(t.shape(), new long[] {in, o}))
      throw new IllegalArgumentException("tensor '" + k + "' has shape " + Arrays.toString(t.shape())
          + ", expected Conv1D's [in, out] = [" + in + ", " + o + "]");
    return t.transpose().dup('c');
  }

  public static Gpt2Model load(Path dir, DataType dtype, boolean trainable) throws IOException {
    return fromWeights(Gpt2Config.fromJson(dir.resolve("config.json")), HfCheckpoint.readWeights(dir), dtype, trainable);
  }

  /** Hugging Face's GPT-2 initialisation: N(0, 0.02²), residual projections (c_proj) N(0, (0.02/√(2L))²), LN 1/0. */
  public static Gpt2Model random(Gpt2Config c, DataType dtype, long seed, boolean trainable) {
    return fromWeights(c, randomWeights(c, dtype, seed), dtype, trainable);
  }

  /** Random weights in checkpoint layout (Conv1D {@code [in, out]}). */
  public static Map<String, INDArray> randomWeights(Gpt2Config c, DataType dtype, long seed) {
    Map<String, INDArray> w = new LinkedHashMap<>();
    double std = c.initializerRange(), residual = std / Math.sqrt(2.0 * c.nLayer());
    int h = c.nEmbd(), inner = c.nInner();
    w.put("transformer.wte.weight", HfWeights.normal("transformer.wte.weight", seed, std, dtype, c.vocabSize(), h));
    w.put("transformer.wpe.weight", HfWeights.normal("transformer.wpe.weight", seed, std, dtype, c.nPositions(), h));
    for (int i = 0; i < c.nLayer(); i++) {
      String p = "transformer.h." + i + ".";
      for (String n : List.of("ln_1", "ln_2")) {
        w.put(p + n + ".weight", Nd4j.ones(dtype, h));
        w.put(p + n + ".bias", Nd4j.zeros(dtype, h));
      }
      conv(w, p + "attn.c_attn", h, 3 * h, seed, std, dtype);
      conv(w, p + "attn.c_proj", h, h, seed, residual, dtype);
      conv(w, p + "mlp.c_fc", h, inner, seed, std, dtype);
      conv(w, p + "mlp.c_proj", inner, h, seed, residual, dtype);
    }
    w.put("transformer.ln_f.weight", Nd4j.ones(dtype, h));
    w.put("transformer.ln_f.bias", Nd4j.zeros(dtype, h));
    if (!c.tieWordEmbeddings()) w.put("lm_head.weight", HfWeights.normal("lm_head.weight", seed, std, dtype, c.vocabSize(), h));
    return w;
  }

  private static void conv(Map<String, INDArray> w, String module, int in, int out, long seed, double std, DataType dtype) {
    w.put(module + ".weight", HfWeights.normal(module + ".weight", seed, std, dtype, in, out));
    w.put(module + ".bias", Nd4j.zeros(dtype, out));
  }

  public Gpt2Config config() { return config; }
  public TokenEmbedding wte() { return wte; }
  public TokenEmbedding wpe() { return wpe; }
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
  public CausalMask mask(int[][] mask) { return virtual.mask(mask, 0, dtype); }

  @Override public void setPrompt(Param prompt) { virtual.setPrompt(prompt, config.nEmbd()); }

  @Override
  public void setPrefix(Param prefix) {
    virtual.setPrefix(prefix, prefixWidth());
    for (int i = 0; i < layers.size(); i++) layers.get(i).attention().setPrefix(prefix, i);
  }

  @Override public int prefixWidth() { return layers.size() * 2 * config.nEmbd(); }
  @Override public Param inputEmbeddings() { return wte.table(); }
  @Override public int virtualTokens() { return virtual.count(); }

  @Override
  public INDArray hidden(int[][] ids, CausalMask mask) {
    int[] flat = CausalLm.flatten(ids);
    virtual.check(ids, mask);
    for (int p : mask.positions()) {
      if (p >= config.nPositions())
        throw new IllegalArgumentException("position " + p + " exceeds the model's " + config.nPositions() + " positions (n_positions)"
            + (virtualTokens() > 0 ? ", " + virtualTokens() + " virtual tokens included" : ""));
    }
    INDArray x = virtual.prepend(wte.forward(flat), ids.length).addi(wpe.forward(mask.positions()));
    if (checkpointing) {
      x = checkpoints.forward(layers.stream().map(l -> l.checkpointed(mask)).toList(), x);
    } else {
      for (Gpt2Layer layer : layers) x = layer.forward(x, mask);
    }
    return lnF.forward(x);
  }

  @Override public boolean gradientCheckpointing() { return checkpointing; }

  @Override public void setGradientCheckpointing(boolean on) { checkpointing = on; }

  @Override public int maxPositions() { return config.nPositions(); }

  @Override
  public KvCache newCache(int capacity) {
    if (capacity > maxPositions())
      throw new IllegalArgumentException("a cache of " + capacity + " tokens exceeds the model's " + maxPositions() + " positions (n_positions)");
    KvCache cache = new KvCache(layers.size(), config.nHead(), config.headDim(), capacity, dtype);
    for (int i = 0; i < layers.size(); i++) layers.get(i).attention().prefill(cache.layer(i));
    return cache;
  }

  @Override
  public INDArray hiddenCached(int[] ids, KvCache cache) {
    int nv = cache.length() == 0 ? virtual.promptRows() : 0;   // prompt tuning: the virtual rows enter with the first prefill
    cache.checkRoom(nv + ids.length);
    int[] positions = new int[nv + ids.length];
    for (int i = 0; i < positions.length; i++) positions[i] = cache.length() + i;
    INDArray words = wte.forward(ids);
    INDArray x = (nv > 0 ? PromptRows.prepend(virtual.prompt(), words, 1) : words).addi(wpe.forward(positions));
    for (int i = 0; i < layers.size(); i++) x = layers.get(i).step(x, cache.layer(i));
    return PromptRows.dropVirtual(lnF.forward(x), nv);
  }

  @Override
  public void backwardHidden(INDArray dHidden) {
    boolean embeddings = wte.table().isTrainable() || wpe.table().isTrainable() || virtual.promptTrains();
    int lowest = embeddings ? -1 : layers.size();
    if (virtual.prefixTrains()) lowest = Math.min(lowest, 0);   // every layer reads its prefix
    for (int i = 0; i < layers.size() && lowest == layers.size(); i++) if (layers.get(i).hasTrainable()) lowest = i;
    INDArray d = lnF.backward(dHidden);
    if (checkpointing) {
      if (lowest < layers.size()) d = checkpoints.backward(d, Math.max(0, lowest), lowest == -1);
    } else {
      for (int i = layers.size() - 1; i >= 0 && i >= lowest; i--) d = layers.get(i).backward(d, i > lowest);
    }
    if (lowest == -1) {
      wpe.backward(d);                                                   // every row, virtual ones included
      wte.backward(virtual.backward(d));
    }
  }

  @Override
  public void mapLinears(UnaryOperator<LinearLayer> f) {
    for (Gpt2Layer layer : layers) layer.mapLinears(f);
  }

  @Override
  public List<LinearLayer> linears() {
    List<LinearLayer> all = new ArrayList<>();
    for (Gpt2Layer layer : layers) all.addAll(layer.linears());
    return all;
  }

  @Override
  public List<Param> params() {
    LinkedHashSet<Param> all = new LinkedHashSet<>(List.of(wte.table(), wpe.table()));
    for (Gpt2Layer layer : layers) all.addAll(layer.params());
    all.addAll(List.of(lnF.gamma(), lnF.beta()));
    all.addAll(head.params());
    virtual.addParams(all);
    return List.copyOf(all);
  }

  @Override
  public CausalLm twin(boolean trainable) {
    if (!plainLinears()) return null;
    Gpt2Model t = fromLinearLayout(config, CausalLm.stateDict(base), dtype, trainable, UnaryOperator.identity());
    t.setGradientCheckpointing(checkpointing);
    t.setLossChunkRows(chunkRows);
    return t;
  }

  /** Checkpoint layout again: Conv1D weights {@code [in, out]}, {@code transformer.} prefix. */
  @Override
  public Map<String, INDArray> stateDict() {
    Map<String, INDArray> out = CausalLm.stateDict(base);
    for (var e : out.entrySet()) {
      String k = e.getKey();
      if (k.endsWith(".weight") && CONV1D.stream().anyMatch(m -> k.endsWith("." + m + ".weight")))
        e.setValue(e.getValue().transpose().dup('c'));
    }
    return out;
  }
}
