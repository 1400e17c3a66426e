package dev.peftspark.spark.job;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.prompt.PromptConfig;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.train.EvalResult;
import dev.peftspark.core.train.OutputDir;
import dev.peftspark.core.train.RunOutputs;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainListeners;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.core.train.Trainer;
import dev.peftspark.datasets.EmptyRecordPolicy;
import dev.peftspark.datasets.LabelMap;
import dev.peftspark.datasets.ReadResult;
import dev.peftspark.datasets.ReaderOptions;
import dev.peftspark.datasets.RecordReader;
import org.nd4j.linalg.api.buffer.DataType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Sequence classification on one JVM: read → tokenize → build the PEFT model → train → evaluate → save. Everything
 * goes to a staging directory that replaces the output files only when the whole run succeeded.
 */
public final class ClassificationJob {
  private static final Logger log = LoggerFactory.getLogger(ClassificationJob.class);

  /** Folder of output_dir where a fitter keeps its checkpoints; carried into the committed output. */
  public static final String CHECKPOINTS = "checkpoints";

  private ClassificationJob() {}

  /** Trains on this JVM ({@code runner: local}). */
  public static TrainSummary train(JobConfig cfg, TrainListener listener) throws Exception {
    return train(cfg, listener, Fitter.LOCAL);
  }

  /** Trains with {@code fitter} doing the optimizer steps; reading, evaluation and saving stay on this JVM. */
  public static TrainSummary train(JobConfig cfg, TrainListener listener, Fitter fitter) throws Exception {
    if (cfg.outputDir() == null || cfg.outputDir().isBlank()) throw new IllegalArgumentException("output_dir is required");
    long start = System.nanoTime();
    AdapterFiles.Info init = cfg.initAdapter() == null ? null : initAdapter(cfg);
    // the data first: a bad record fails in milliseconds, not after loading the base model
    ReaderOptions opts = readerOptions(cfg, init == null ? null : labelMap(init.labels()));
    ReadResult trainData = RecordReader.read(cfg.data().train(), opts, HadoopPaths.conf());
    ReadResult testData = cfg.data().test() == null || cfg.data().test().isEmpty() ? null
        : RecordReader.read(cfg.data().test(), opts.withFixedLabels(trainData.labels()), HadoopPaths.conf());
    BaseModel base = BaseModel.load(cfg.model(), BaseStorage.of(Method.parse(cfg.method())));
    Tokenized train = Tokenized.of(trainData, base.tokenizer(), cfg.data().maxLength());
    Tokenized test = testData == null ? null : Tokenized.of(testData, base.tokenizer(), cfg.data().maxLength());
    log.info("{} training examples ({} skipped, {} truncated to {} tokens), {} labels",
        train.size(), train.skipped(), train.truncated(), cfg.data().maxLength(), trainData.labels().size());

    PeftClassifier model = init != null
        ? AdapterFiles.load(Path.of(cfg.initAdapter()), base.config(), base.weights(), DataType.FLOAT)
        : PeftClassifier.create(Method.parse(cfg.method()), loraConfig(cfg), ia3Config(cfg), promptConfig(cfg, base),
            base.config(), base.weights(),
            cfg.head().numLabels() > 0 ? cfg.head().numLabels() : trainData.labels().size(),
            Pooling.Mode.valueOf(cfg.head().pooling().toUpperCase()), DataType.FLOAT, cfg.train().seed());

    // A remote output_dir (hdfs://, s3a://...) is assembled in a local folder and published whole at the end.
    boolean remote = HadoopPaths.isRemote(cfg.outputDir());
    Path outputDir = HadoopPaths.runOutputDir(cfg.outputDir());
    Path staging = OutputDir.staging(outputDir);
    try (RunOutputs outputs = new RunOutputs(staging, cfg)) {
      TrainListener all = TrainListeners.compose(outputs, listener);
      Trainer.Result r = fitter.fit(model, train, cfg, all);
      EvalResult eval = null;
      if (test != null) {
        eval = Trainer.evaluate(model, Tokenized.toTokenBatches(test.batcher(cfg.train().batchSize()).eval()), test.skipped());
        all.onEval(eval);
      }
      AdapterFiles.save(staging, model, trainData.labels().names(), base.name(), base.hfId());
      long wallMs = (System.nanoTime() - start) / 1_000_000;
      TrainSummary summary = new TrainSummary(model.method().key(), model.trainableCount(), model.totalCount(),
          r.steps(), r.epochs(), r.finalLoss(), wallMs, r.examples() / Math.max(1e-9, r.wallMs() / 1000.0),
          train.size(), train.skipped(), eval,
          remote ? cfg.outputDir() : outputDir.toString(),
          fitter.distributed());
      all.onEnd(summary);
      outputs.close();
      HadoopPaths.publishRun(staging, outputDir, cfg.outputDir());
      return summary;
    } catch (Exception | Error e) {
      OutputDir.abort(staging);
      throw e;
    }
  }

  public static EvalResult eval(JobConfig cfg, String adapterDir) throws Exception {
    if (cfg.data().test() == null || cfg.data().test().isEmpty()) throw new IllegalArgumentException("data.test is required for eval");
    AdapterFiles.Info info = AdapterFiles.info(Path.of(adapterDir));
    ReadResult testData = RecordReader.read(cfg.data().test(), readerOptions(cfg, labelMap(info.labels())),
        HadoopPaths.conf());
    BaseModel base = BaseModel.load(cfg.model());
    PeftClassifier model = AdapterFiles.load(Path.of(adapterDir), base.config(), base.weights(), DataType.FLOAT);
    Tokenized test = Tokenized.of(testData, base.tokenizer(), cfg.data().maxLength());
    EvalResult r = Trainer.evaluate(model, Tokenized.toTokenBatches(test.batcher(cfg.train().batchSize()).eval()), test.skipped());
    Path dir = cfg.outputDir() == null ? Path.of(adapterDir) : Path.of(cfg.outputDir());
    Files.createDirectories(dir);
    RunOutputs.writeEval(dir, r);
    return r;
  }

  /**
   * The saved adapter a run starts from. It fixes the method, LoRA settings and labels: a config asking for
   * another method is refused, differing LoRA settings are overridden (and logged).
   */
  public static AdapterFiles.Info initAdapter(JobConfig cfg) throws java.io.IOException {
    AdapterFiles.Info init = AdapterFiles.info(Path.of(cfg.initAdapter()));
    Method asked = Method.parse(cfg.method());
    if (init.method() != asked) {
      throw new IllegalArgumentException("init_adapter " + cfg.initAdapter() + " holds a '" + init.method().key()
          + "' model but method is '" + asked.key() + "'; set method: " + init.method().key());
    }
    LoraConfig wanted = loraConfig(cfg);
    if (init.lora() != null && wanted != null && (init.lora().r() != wanted.r() || init.lora().alpha() != wanted.alpha()
        || !init.lora().targetModules().equals(wanted.targetModules()))) {
      log.warn("init_adapter {} has r={}, alpha={}, target_modules={}; those are used, not the config's lora section",
          cfg.initAdapter(), init.lora().r(), init.lora().alpha(), init.lora().targetModules());
    }
    return init;
  }

  static ReaderOptions readerOptions(JobConfig cfg, LabelMap fixed) {
    return new ReaderOptions(cfg.data().format(), cfg.data().textField(), cfg.data().labelField(),
        EmptyRecordPolicy.parse(cfg.data().emptyRecords()), fixed);
  }

  /** Label names as saved by a run: "0".."k-1" means integer labels. */
  public static LabelMap labelMap(List<String> names) {
    List<String> numeric = new ArrayList<>();
    for (int i = 0; i < names.size(); i++) numeric.add(Integer.toString(i));
    return names.equals(numeric) ? LabelMap.numeric(names.size()) : LabelMap.ofNames(names);
  }

  public static LoraConfig loraConfig(JobConfig cfg) {
    if (!Method.parse(cfg.method()).usesLora()) return null;
    var l = cfg.lora();
    Map<String, Integer> ranks = new LinkedHashMap<>();
    l.rankPattern().forEach((k, v) -> ranks.put(k, Integer.parseInt(v)));     // validated by JobConfigLoader
    Map<String, Double> alphas = new LinkedHashMap<>();
    l.alphaPattern().forEach((k, v) -> alphas.put(k, Double.parseDouble(v)));
    return new LoraConfig(l.r(), l.alpha(), l.dropout(), l.targetModules(), l.useRslora(), l.bias(),
        "gaussian".equals(l.initLoraWeights()), l.useDora(), ranks, alphas,
        l.layersToTransform().stream().map(Integer::parseInt).toList(), l.modulesToSave());
  }

  /** The prompt section; text init tokenized with the base model's tokenizer (PEFT uses the model's own too). */
  public static PromptConfig promptConfig(JobConfig cfg, BaseModel base) {
    if (!Method.parse(cfg.method()).usesPrompt()) return null;
    var p = cfg.prompt();
    if (!p.init().equals("text")) return PromptConfig.random(p.numVirtualTokens());
    try (var tok = new dev.peftspark.datasets.TextTokenizer(base.tokenizer())) {
      int[] ids = tok.encode(p.initText(), base.config().maxPositionEmbeddings());
      return new PromptConfig(p.numVirtualTokens(), java.util.Arrays.stream(ids).boxed().toList(), p.initText());
    }
  }

  public static Ia3Config ia3Config(JobConfig cfg) {
    if (Method.parse(cfg.method()) != Method.IA3) return null;
    return new Ia3Config(cfg.ia3().targetModules(), cfg.ia3().feedforwardModules());
  }
}
