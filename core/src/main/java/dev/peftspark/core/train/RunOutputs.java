package dev.peftspark.core.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The run files a training job leaves beside its adapter, written into {@code dir} (normally the staging
 * directory from {@link OutputDir#staging}, committed by the trainer once the adapter is saved):
 * {@value #CONFIG} at construction, {@value #METRICS} per step, {@value #EVAL} on evaluation, and
 * {@value #SUMMARY} plus {@value #REPORT} at the end. Each whole file is written atomically.
 */
public final class RunOutputs implements TrainListener, Closeable {
  public static final String CONFIG = "config.yaml";
  public static final String METRICS = "metrics.jsonl";
  public static final String EVAL = "eval.json";
  public static final String SUMMARY = "summary.json";
  public static final String REPORT = "report.html";

  private static final ObjectMapper JSON = new ObjectMapper()
      .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
      .enable(SerializationFeature.INDENT_OUTPUT);

  private final Path dir;
  private final JobConfig cfg;
  private final MetricsJsonl metrics;
  private final List<StepMetrics> steps = new ArrayList<>();

  public RunOutputs(Path dir, JobConfig cfg) throws IOException {
    this.dir = dir;
    this.cfg = cfg;
    Files.createDirectories(dir);
    String yaml = JobConfigLoader.toYaml(cfg);
    OutputDir.writeAtomically(dir.resolve(CONFIG), tmp -> Files.writeString(tmp, yaml));
    this.metrics = new MetricsJsonl(dir.resolve(METRICS));
  }

  @Override
  public void onStep(StepMetrics m) {
    steps.add(m);
    metrics.onStep(m);
  }

  @Override
  public void onEval(EvalResult r) {
    writeJson(EVAL, r);
  }

  @Override
  public void onEnd(TrainSummary s) {
    try {
      metrics.close();
      writeJson(SUMMARY, s);
      HtmlReport.write(dir.resolve(REPORT), cfg, steps, s);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write run outputs in " + dir, e);
    }
  }

  /** The steps seen so far (for a report drawn elsewhere). */
  public List<StepMetrics> steps() {
    return List.copyOf(steps);
  }

  private void writeJson(String name, Object value) {
    writeJson(dir, name, value);
  }

  /** Writes {@value #EVAL} into {@code dir} (the {@code eval} command's output). */
  public static void writeEval(Path dir, EvalResult r) {
    writeJson(dir, EVAL, r);
  }

  /** A causal LM's eval.json: loss (mean token cross-entropy), perplexity, tokens, millis. */
  public static void writeLmEval(Path dir, LmEvalResult r) {
    writeJson(dir, EVAL, r);
  }

  private static void writeJson(Path dir, String name, Object value) {
    try {
      byte[] bytes = JSON.writeValueAsBytes(value);
      OutputDir.writeAtomically(dir.resolve(name), tmp -> Files.write(tmp, bytes));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + dir.resolve(name), e);
    }
  }

  @Override
  public void close() throws IOException {
    metrics.close();
  }
}
