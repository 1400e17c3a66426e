package dev.peftspark.spark.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.peftspark.core.io.MiniLm;
import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.datasets.Batch;
import dev.peftspark.datasets.Batcher;
import dev.peftspark.datasets.DemoData;
import dev.peftspark.datasets.RecordReader;
import dev.peftspark.datasets.TextTokenizer;
import dev.peftspark.spark.job.BaseModel;
import dev.peftspark.spark.job.EmbedJob;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Sentence embeddings of the 3,000 sentiment sentences: peft-spark's encoder vs onnxruntime on the same ONNX file,
 * same tokens, same length-sorted batches of 32. Prints one JSON line (sentences/s of each, worst cosine).
 * Run: see BENCHMARKS.md ("embed vs onnxruntime").
 */
public final class EmbedVsOnnxRuntime {
  public static void main(String[] args) throws Exception {
    int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    BaseModel base = BaseModel.load(BaseModel.MINILM);
    List<String> texts = new ArrayList<>();
    for (String f : List.of("amazon.json", "imdb.json", "yelp.json")) {
      texts.addAll(RecordReader.readTexts(DemoData.sentiment().resolve(f).toString(), "text"));
    }
    List<int[]> ids;
    try (TextTokenizer tok = new TextTokenizer(base.tokenizer())) {
      ids = tok.encode(texts, EmbedJob.MAX_LENGTH).ids();
    }
    List<Batch> batches = new Batcher(ids, null, 32).eval();
    BertEncoder enc = BertEncoder.fromWeights(base.config(), base.weights(), DataType.FLOAT, false);

    OrtEnvironment env = OrtEnvironment.getEnvironment();
    OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
    opts.setIntraOpNumThreads(threads);
    opts.setInterOpNumThreads(1);
    OrtSession session = env.createSession(MiniLm.onnxFile().toString(), opts);

    float[][] ours = new float[texts.size()][], ref = new float[texts.size()][];
    double oursS = 0, ortS = 0;
    for (int round = 0; round < 2; round++) {          // round 0 warms up both
      long t0 = System.nanoTime();
      for (Batch b : batches) {
        try (var ws = Nd4jSetup.stepWorkspace()) {
          INDArray e = BertClassifier.embed(enc, b.inputIds(), b.attentionMask(), DataType.FLOAT);
          for (int i = 0; i < b.size(); i++) ours[b.exampleIndex()[i]] = e.getRow(i).toFloatVector();
        }
      }
      long t1 = System.nanoTime();
      for (Batch b : batches) {
        float[][] r = onnxMeanPooled(env, session, b);
        for (int i = 0; i < b.size(); i++) ref[b.exampleIndex()[i]] = r[i];
      }
      long t2 = System.nanoTime();
      oursS = (t1 - t0) / 1e9;
      ortS = (t2 - t1) / 1e9;
    }
    double worst = 1;
    for (int i = 0; i < texts.size(); i++) worst = Math.min(worst, cosine(ours[i], ref[i]));
    System.out.printf("{\"sentences\": %d, \"threads\": %d, \"peft_spark_sentences_per_s\": %.1f, "
            + "\"onnxruntime_sentences_per_s\": %.1f, \"ratio\": %.3f, \"min_cosine\": %.8f}%n",
        texts.size(), threads, texts.size() / oursS, texts.size() / ortS, ortS / oursS, worst);
    session.close();
  }

  static float[][] onnxMeanPooled(OrtEnvironment env, OrtSession session, Batch b) throws Exception {
    int n = b.size(), t = b.width();
    long[][] idsL = new long[n][t], mask = new long[n][t], types = new long[n][t];
    for (int i = 0; i < n; i++) for (int j = 0; j < t; j++) { idsL[i][j] = b.inputIds()[i][j]; mask[i][j] = b.attentionMask()[i][j]; }
    Map<String, OnnxTensor> in = new HashMap<>();
    in.put("input_ids", OnnxTensor.createTensor(env, idsL));
    in.put("attention_mask", OnnxTensor.createTensor(env, mask));
    if (session.getInputNames().contains("token_type_ids")) in.put("token_type_ids", OnnxTensor.createTensor(env, types));
    try (OrtSession.Result r = session.run(in)) {
      float[][][] h = (float[][][]) r.get(0).getValue();
      float[][] out = new float[n][];
      for (int i = 0; i < n; i++) {
        float[] mean = new float[h[i][0].length];
        int real = 0;
        for (int j = 0; j < t; j++) {
          if (mask[i][j] == 0) continue;
          real++;
          for (int k = 0; k < mean.length; k++) mean[k] += h[i][j][k];
        }
        double norm = 0;
        for (int k = 0; k < mean.length; k++) { mean[k] /= real; norm += mean[k] * mean[k]; }
        for (int k = 0; k < mean.length; k++) mean[k] /= (float) Math.sqrt(norm);
        out[i] = mean;
      }
      return out;
    } finally {
      for (OnnxTensor x : in.values()) x.close();
    }
  }

  static double cosine(float[] a, float[] b) {
    double d = 0, na = 0, nb = 0;
    for (int i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
    return d / Math.sqrt(na * nb);
  }
}
