package dev.peftspark.spark.job;

import dev.peftspark.core.config.ConfigException;
import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.peft.LmAdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.prompt.PromptConfig;
import dev.peftspark.core.train.LmEvalResult;
import dev.peftspark.core.train.OutputDir;
import dev.peftspark.core.train.RunOutputs;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainListeners;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.core.train.Trainer;
import dev.peftspark.datasets.lm.Gpt2Bpe;
import dev.peftspark.datasets.lm.HfLmTokenizer;
import dev.peftspark.datasets.lm.LmBatcher;
import dev.peftspark.datasets.lm.LmDataOptions;
import dev.peftspark.datasets.lm.LmExample;
import dev.peftspark.datasets.lm.LmRecords;
import dev.peftspark.datasets.lm.LmTokenizer;
import org.nd4j.linalg.api.buffer.DataType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * Causal-LM training and evaluation on one JVM: read and tokenize → build the base (a model directory, or
 * {@code random}) with the PEFT method → train on packed or padded rows → evaluate (mean token cross-entropy,
 * perplexity) → save in PEFT layout. Outputs are staged and committed whole, as for classification.
 */
public final class CausalLmJob {
  private static final Logger log = LoggerFactory.getLogger(CausalLmJob.class);
  /** BERT's defaults for lora/ia3 targets: a causal-LM config that keeps them gets PEFT's per-family default. */
  private static final List<String> BERT_LORA_TARGETS = JobConfigLoader.DEFAULTS.lora().targetModules();
  private static final List<String> BERT_IA3_TARGETS = JobConfigLoader.DEFAULTS.ia3().targetModules();

  private CausalLmJob() {}

  public static TrainSummary train(JobConfig cfg, TrainListener listener) throws Exception {
    return train(cfg, listener, LmFitter.LOCAL);
  }

  /** Trains with {@code fitter} (this JVM, or Spark); reading, evaluation and outputs are the same for both. */
  public static TrainSummary train(JobConfig cfg, TrainListener listener, LmFitter fitter) throws Exception {
    long start = System.nanoTime();
    CausalLmBase base = CausalLmBase.load(cfg.model(), cfg.modelConfig(), cfg.train().seed(),
        BaseStorage.of(Method.parse(cfg.method())));
    LmTokenizer tokenizer = tokenizer(cfg, base);
    LmDataOptions opts = dataOptions(cfg);
    List<LmExample> train = read(cfg.data().train(), opts, tokenizer, "data.train");
    List<LmExample> test = cfg.data().test().isEmpty() ? null : read(cfg.data().test(), opts, tokenizer, "data.test");
    LmBatcher batcher = LmBatcher.of(train, opts, cfg.train().batchSize());
    log.info("{} training documents, {} rows of {} tokens, {} target tokens", batcher.examples(), batcher.rows(),
        opts.maxLength(), batcher.targetTokens());

    PeftCausalLm model = newModel(cfg, base);

    // A remote output_dir (hdfs://, s3a://...) is assembled in a local folder and published whole at the end.
    boolean remote = HadoopPaths.isRemote(cfg.outputDir());
    Path outputDir = HadoopPaths.runOutputDir(cfg.outputDir());
    Path staging = OutputDir.staging(outputDir);
    try (RunOutputs outputs = new RunOutputs(staging, cfg)) {
      TrainListener all = TrainListeners.compose(outputs, listener);
      Trainer.Result r = fitter.fit(model, batcher, cfg, all);
      if (test != null) {
        LmEvalResult eval = model.evaluate(LmBatcher.of(test, opts, cfg.train().batchSize()).eval());
        log.info("test: loss {} perplexity {} over {} target tokens", eval.loss(), eval.perplexity(), eval.tokens());
        RunOutputs.writeLmEval(staging, eval);
      }
      LmAdapterFiles.save(staging, model, base.shape(), base.name(), base.hfId());
      if (model.method() == Method.FULL && base.tokenizerJson() != null)   // a complete model directory
        Files.copy(base.tokenizerJson(), staging.resolve("tokenizer.json"), StandardCopyOption.REPLACE_EXISTING);
      long wallMs = (System.nanoTime() - start) / 1_000_000;
      TrainSummary summary = new TrainSummary(model.method().key(), model.trainableCount(), model.totalCount(),
          r.steps(), r.epochs(), r.finalLoss(), wallMs, r.examples() / Math.max(1e-9, r.wallMs() / 1000.0),
          train.size(), 0, null, remote ? cfg.outputDir() : outputDir.toString(), fitter.distributed());
      all.onEnd(summary);
      outputs.close();
      HadoopPaths.publishRun(staging, outputDir, cfg.outputDir());
      return summary;
    } catch (Exception | Error e) {
      OutputDir.abort(staging);
      throw e;
    }
  }

  /**
   * Mean token cross-entropy and perplexity of the base (no adapter) or of {@code adapterDir} on data.test;
   * eval.json goes to output_dir, else to the adapter directory.
   */
  public static LmEvalResult eval(JobConfig cfg, String adapterDir) throws Exception {
    // a qlora adapter evaluates on the NF4 base (the same model, without a float copy of its linears)
    BaseStorage storage = adapterDir == null ? BaseStorage.FLOAT : BaseStorage.of(LmAdapterFiles.info(Path.of(adapterDir)).method());
    CausalLmBase base = CausalLmBase.load(cfg.model(), cfg.modelConfig(), cfg.train().seed(), storage);
    LmTokenizer tokenizer = tokenizer(cfg, base);
    LmDataOptions opts = dataOptions(cfg);
    List<LmExample> test = read(cfg.data().test(), opts, tokenizer, "data.test");
    PeftCausalLm model = adapterDir != null
        ? LmAdapterFiles.load(Path.of(adapterDir), base.builder(), DataType.FLOAT)
        : PeftCausalLm.create(Method.FULL, null, null, base.builder(), DataType.FLOAT, 0);
    LmEvalResult r = model.evaluate(LmBatcher.of(test, opts, cfg.train().batchSize()).eval());
    String where = cfg.outputDir() != null ? cfg.outputDir() : adapterDir;
    if (where == null) throw new ConfigException("output_dir", "is required for eval without --adapter (where eval.json goes)");
    if (HadoopPaths.isRemote(where))
      throw new ConfigException("output_dir", "eval writes eval.json to a local folder, not to " + where);
    Path dir = HadoopPaths.local(where);
    Files.createDirectories(dir);
    RunOutputs.writeLmEval(dir, r);
    return r;
  }

  /**
   * The model to train: the config's method fresh on {@code base} (seeded by train.seed), or its init_adapter
   * loaded on it; the same for every runner and for the Spark ML stage.
   */
  /** The model a training run starts from: {@code init_adapter} when given, else a fresh adapter of {@code method}. */
  public static PeftCausalLm newModel(JobConfig cfg, CausalLmBase base) throws IOException {
    PeftCausalLm model = cfg.initAdapter() != null
        ? LmAdapterFiles.load(Path.of(cfg.initAdapter()), base.builder(), DataType.FLOAT)
        : PeftCausalLm.create(Method.parse(cfg.method()), loraConfig(cfg, base), ia3Config(cfg, base),
            promptConfig(cfg, () -> tokenizer(cfg, base)), base.builder(), DataType.FLOAT, cfg.train().seed());
    if (model.method() != Method.parse(cfg.method()))
      throw new ConfigException("init_adapter", "holds a '" + model.method().key() + "' model but method is '"
          + cfg.method() + "'");
    model.model().setGradientCheckpointing(cfg.train().gradientCheckpointing());
    return model;
  }

  public static LmTokenizer tokenizer(JobConfig cfg, CausalLmBase base) {
    return tokenizer(cfg.tokenizer(), base);
  }

  /**
   * The tokenizer the config key {@code tokenizer} names (null: the model directory's tokenizer.json, {@code gpt2},
   * or a tokenizer.json path), checked against the base's vocabulary. Close it when it is AutoCloseable.
   */
  public static LmTokenizer tokenizer(String t, CausalLmBase base) {
    LmTokenizer tok;
    if (t == null) {
      if (base.tokenizerJson() == null) {
        throw new ConfigException("tokenizer", "is required: the model " + base.name() + " has no tokenizer.json "
            + "(use gpt2 for the demo GPT-2 BPE, or a tokenizer.json path)");
      }
      tok = HfLmTokenizer.load(base.dir());
    } else if (t.equals("gpt2")) {
      tok = Gpt2Bpe.demo();
    } else {
      Path p = HadoopPaths.local(t);
      if (!Files.exists(p)) throw new ConfigException("tokenizer", "no such file or directory: " + t);
      tok = HfLmTokenizer.load(Files.isDirectory(p) ? p : p.toAbsolutePath().getParent());
    }
    if (tok.vocabSize() > base.shape().vocabSize()) {
      throw new ConfigException("tokenizer", "has " + tok.vocabSize() + " ids but the model's vocab_size is "
          + base.shape().vocabSize() + ": they do not belong together");
    }
    return tok;
  }

  /** The data section as the causal-LM readers and the batcher take it. */
  public static LmDataOptions dataOptions(JobConfig cfg) {
    var d = cfg.data();
    return new LmDataOptions(d.lmFormat(), d.textField(), d.promptField(), d.responseField(), d.template(),
        d.perFile(), d.maxLength(), d.packing(), d.format());
  }

  private static List<LmExample> read(List<String> uris, LmDataOptions opts, LmTokenizer tok, String key) {
    List<LmExample> out = LmRecords.read(uris, opts, tok, HadoopPaths.conf());
    if (out.isEmpty()) throw new ConfigException(key, "holds no document: " + uris);
    return out;
  }

  /** The lora section; target_modules left at BERT's default become PEFT's default for the family. */
  static LoraConfig loraConfig(JobConfig cfg, CausalLmBase base) {
    LoraConfig l = ClassificationJob.loraConfig(cfg);
    if (l == null || !l.targetModules().equals(BERT_LORA_TARGETS)) return l;
    return new LoraConfig(l.r(), l.alpha(), l.dropout(), base.shape().defaultLoraTargets(), l.useRslora(), l.bias(),
        l.initGaussian(), l.useDora(), l.rankPattern(), l.alphaPattern(), l.layersToTransform(), l.modulesToSave());
  }

  /**
   * The prompt section; a text init is tokenized by the model's tokenizer with its document prefix (LLaMA's BOS),
   * as PEFT's {@code tokenizer(init_text)} adds the special tokens.
   */
  /** The prompt section for prompt/prefix tuning (null for other methods); the tokenizer is only built for text init. */
  static PromptConfig promptConfig(JobConfig cfg, java.util.function.Supplier<LmTokenizer> tokenizers) {
    if (!Method.parse(cfg.method()).usesPrompt()) return null;
    var p = cfg.prompt();
    if (!p.init().equals("text")) return PromptConfig.random(p.numVirtualTokens());
    LmTokenizer tokenizer = tokenizers.get();
    int[] prefix = tokenizer.prefixIds(), text = tokenizer.encode(p.initText());
    List<Integer> ids = new java.util.ArrayList<>();
    for (int id : prefix) ids.add(id);
    for (int id : text) ids.add(id);
    if (text.length == 0) throw new ConfigException("prompt.init_text", "gives no tokens: '" + p.initText() + "'");
    return new PromptConfig(p.numVirtualTokens(), ids, p.initText());
  }

  static Ia3Config ia3Config(JobConfig cfg, CausalLmBase base) {
    Ia3Config c = ClassificationJob.ia3Config(cfg);
    if (c == null || !c.targetModules().equals(BERT_IA3_TARGETS)) return c;
    return PeftCausalLm.defaultIa3(base.shape());
  }
}
