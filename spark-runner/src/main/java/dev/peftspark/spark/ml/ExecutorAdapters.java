package dev.peftspark.spark.ml;

import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.spark.dist.ExecutorModels;
import dev.peftspark.spark.job.BaseModel;
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
 * concurrently running task (a model keeps its activations and is not shared between threads).
 */
final class ExecutorAdapters {
  private static final Map<String, Queue<PeftClassifier>> POOL = new ConcurrentHashMap<>();

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

  private static Queue<PeftClassifier> queue(String baseModel, AdapterBytes adapter) {
    return POOL.computeIfAbsent(baseModel + "\u0000" + adapter.digest(), k -> new ConcurrentLinkedQueue<>());
  }
}
