package dev.peftspark.spark.ml;

import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.LmAdapterFiles;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.spark.dist.ExecutorModels;
import dev.peftspark.spark.job.BaseModel;
import dev.peftspark.spark.job.CausalLmBase;
import org.apache.hadoop.fs.FileUtil;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Inference models kept per executor JVM: keyed by base model and adapter digest, built on the base that
 * {@link BaseModel#load} caches once per JVM (so the base never passes through the driver), one model per
 * concurrently running task (a model keeps its activations and is not shared between threads). Causal LMs the
 * same way, on the base {@link CausalLmBase#load} caches.
 */
final class ExecutorAdapters {
  private static final Map<String, Queue<PeftClassifier>> POOL = new ConcurrentHashMap<>();
  private static final Map<String, Queue<PeftCausalLm>> LM_POOL = new ConcurrentHashMap<>();

  private ExecutorAdapters() {}

  static PeftClassifier borrow(String baseModel, AdapterBytes adapter) throws IOException {
    ExecutorModels.limitBlasThreads();
    PeftClassifier m = queue(baseModel, adapter).poll();
    if (m != null) return m;
    BaseModel base = BaseModel.load(baseModel);
    Path dir = adapter.toLocalDir();
    try {
      return AdapterFiles.load(dir, base.config(), base.weights(), DataType.FLOAT);
    } finally {
      FileUtil.fullyDelete(dir.toFile());
    }
  }

  static void release(String baseModel, AdapterBytes adapter, PeftClassifier m) {
    queue(baseModel, adapter).add(m);
  }

  /** A causal LM with {@code adapter} on this JVM's cached base ({@link CausalLmBase#load}); give it back after. */
  static PeftCausalLm borrowLm(LmRows.Source source, AdapterBytes adapter) throws IOException {
    ExecutorModels.limitBlasThreads();
    PeftCausalLm m = lmQueue(source, adapter).poll();
    if (m != null) return m;
    CausalLmBase base = source.base();
    Path dir = adapter.toLocalDir();
    try {
      return LmAdapterFiles.load(dir, base.builder(), DataType.FLOAT);
    } finally {
      FileUtil.fullyDelete(dir.toFile());
    }
  }

  static void releaseLm(LmRows.Source source, AdapterBytes adapter, PeftCausalLm m) {
    lmQueue(source, adapter).add(m);
  }

  private static Queue<PeftCausalLm> lmQueue(LmRows.Source source, AdapterBytes adapter) {
    return LM_POOL.computeIfAbsent(source.model() + "\u0000" + source.modelConfig() + "\u0000" + source.seed()
        + "\u0000" + adapter.digest(), k -> new ConcurrentLinkedQueue<>());
  }

  private static Queue<PeftClassifier> queue(String baseModel, AdapterBytes adapter) {
    return POOL.computeIfAbsent(baseModel + "\u0000" + adapter.digest(), k -> new ConcurrentLinkedQueue<>());
  }
}
