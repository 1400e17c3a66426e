package dev.peftspark.spark.ml;

import org.apache.spark.ml.param.Params;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWriter;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.ml.util.MLWriter;
import scala.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.function.BiFunction;

/**
 * Spark ML persistence of a Model stage that holds an adapter: the params as Spark's metadata, the adapter in PEFT
 * layout under {@code <path>/adapter/}. Shared by the classification and causal-LM models.
 */
final class AdapterStageIO {
  static final String ADAPTER_DIR = "adapter";

  private AdapterStageIO() {}

  static MLWriter writer(Params stage, AdapterBytes adapter) {
    return new MLWriter() {
      @Override
      public void saveImpl(String path) {
        DefaultParamsWriter.saveMetadata(stage, path, sc(), Option.empty(), Option.empty());
        try {
          adapter.write(new org.apache.hadoop.fs.Path(path, ADAPTER_DIR).toString(), sc().hadoopConfiguration());
        } catch (IOException e) {
          throw new UncheckedIOException("cannot write the adapter of " + stage.uid() + " under " + path, e);
        }
      }
    };
  }

  /** A reader that builds the stage with {@code make(uid, adapter)} and then sets the saved params on it. */
  static <M extends Params> MLReader<M> reader(Class<M> type, BiFunction<String, AdapterBytes, M> make) {
    return new MLReader<>() {
      @Override
      public M load(String path) {
        DefaultParamsReader.Metadata md = DefaultParamsReader.loadMetadata(path, sc(), type.getName());
        AdapterBytes adapter;
        try {
          adapter = AdapterBytes.read(new org.apache.hadoop.fs.Path(path, ADAPTER_DIR).toString(), sc().hadoopConfiguration());
        } catch (IOException e) {
          throw new UncheckedIOException("cannot read the adapter of the stage saved at " + path, e);
        }
        M m = make.apply(md.uid(), adapter);
        md.getAndSetParams(m, Option.empty());
        return m;
      }
    };
  }
}
