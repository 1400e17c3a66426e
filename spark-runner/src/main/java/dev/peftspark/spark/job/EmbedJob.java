package dev.peftspark.spark.job;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.train.OutputDir;
import dev.peftspark.datasets.Batch;
import dev.peftspark.datasets.Batcher;
import dev.peftspark.datasets.RecordReader;
import dev.peftspark.datasets.TextTokenizer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Sentence embeddings, one output line {@code {"embedding": [...]}} per input record, in input order:
 * mean-pooled over real tokens and L2-normalised (all-MiniLM-L6-v2's recipe), optionally through an adapter.
 */
public final class EmbedJob {
  /** sentence-transformers' max_seq_length for all-MiniLM-L6-v2. */
  public static final int MAX_LENGTH = 256;

  private EmbedJob() {}

  public record Result(int sentences, long millis) {
    public double sentencesPerS() { return sentences / Math.max(1e-9, millis / 1000.0); }
  }

  public static Result run(String model, String input, String output, String adapterDir, int batchSize) throws Exception {
    BaseModel base = BaseModel.load(model);
    BertEncoder encoder = adapterDir == null
        ? BertEncoder.fromWeights(base.config(), base.weights(), DataType.FLOAT, false)
        : AdapterFiles.load(Path.of(adapterDir), base.config(), base.weights(), DataType.FLOAT).model().encoder();
    List<String> texts = RecordReader.readTexts(input, "auto", "text", HadoopPaths.conf());
    long start = System.nanoTime();
    List<int[]> ids;
    try (TextTokenizer tok = new TextTokenizer(base.tokenizer())) {
      ids = tok.encode(texts, MAX_LENGTH).ids();
    }
    float[][] out = new float[texts.size()][];
    for (Batch b : new Batcher(ids, null, batchSize).eval()) {
      INDArray e = BertClassifier.embed(encoder, b.inputIds(), b.attentionMask(), DataType.FLOAT);
      for (int i = 0; i < b.size(); i++) out[b.exampleIndex()[i]] = e.getRow(i).toFloatVector();
    }
    long millis = (System.nanoTime() - start) / 1_000_000;
    Path target = Path.of(output.replaceFirst("^file://", ""));
    ObjectMapper json = new ObjectMapper();
    OutputDir.writeAtomically(target, tmp -> {
      try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8);
           JsonGenerator g = json.getFactory().createGenerator(w)) {
        g.setRootValueSeparator(new com.fasterxml.jackson.core.io.SerializedString("\n"));
        for (float[] v : out) {
          g.writeStartObject();
          g.writeArrayFieldStart("embedding");
          for (float f : v) g.writeNumber(f);
          g.writeEndArray();
          g.writeEndObject();
        }
        g.writeRaw('\n');
      }
    });
    return new Result(texts.size(), millis);
  }
}
