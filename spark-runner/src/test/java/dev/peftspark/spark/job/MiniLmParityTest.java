package dev.peftspark.spark.job;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.peftspark.core.io.MiniLm;
import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.datasets.Batch;
import dev.peftspark.datasets.TextTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The real all-MiniLM-L6-v2 forward against onnxruntime running the same ONNX file. */
class MiniLmParityTest {
  static final List<String> SENTENCES = List.of(
      "Good case, Excellent value.",
      "So there is no way for me to plug it in here in the US unless I go by a converter.",
      "The food was great, but the service was painfully slow and the waiter never came back to our table.",
      "Wow... Loved this place.",
      "A", "");

  static BaseModel base;
  static OrtEnvironment env;
  static OrtSession session;
  static Batch batch;

  @BeforeAll
  static void load() throws Exception {
    base = BaseModel.load(BaseModel.MINILM);
    env = OrtEnvironment.getEnvironment();
    session = env.createSession(MiniLm.onnxFile().toString(), new OrtSession.SessionOptions());
    try (TextTokenizer tok = new TextTokenizer(base.tokenizer())) {
      batch = Batch.of(tok.encode(SENTENCES, 128).ids(), null, new int[] {0, 1, 2, 3, 4, 5});
    }
  }

  @AfterAll
  static void close() throws Exception {
    session.close();
  }

  /** ONNX output 0 is last_hidden_state [B, T, 384]. */
  static float[][][] onnxHidden(Batch b) throws Exception {
    int n = b.size(), t = b.width();
    long[][] ids = new long[n][t], mask = new long[n][t], types = new long[n][t];
    for (int i = 0; i < n; i++) for (int j = 0; j < t; j++) { ids[i][j] = b.inputIds()[i][j]; mask[i][j] = b.attentionMask()[i][j]; }
    Map<String, OnnxTensor> in = new HashMap<>();
    in.put("input_ids", OnnxTensor.createTensor(env, ids));
    in.put("attention_mask", OnnxTensor.createTensor(env, mask));
    if (session.getInputNames().contains("token_type_ids")) in.put("token_type_ids", OnnxTensor.createTensor(env, types));
    try (OrtSession.Result r = session.run(in)) {
      return (float[][][]) r.get(0).getValue();
    } finally {
      for (OnnxTensor x : in.values()) x.close();
    }
  }

  @Test
  void lastHiddenStateMatchesOnnxRuntime() throws Exception {
    BertEncoder enc = BertEncoder.fromWeights(base.config(), base.weights(), DataType.FLOAT, false);
    INDArray ours = enc.forward(batch.inputIds(), batch.attentionMask());   // [B*T, 384]
    float[][][] ref = onnxHidden(batch);
    int t = batch.width();
    double worst = 0;
    int compared = 0;
    for (int i = 0; i < batch.size(); i++) {
      for (int j = 0; j < t; j++) {
        if (batch.attentionMask()[i][j] == 0) continue;
        for (int k = 0; k < 384; k++) worst = Math.max(worst, Math.abs(ours.getDouble((long) i * t + j, k) - ref[i][j][k]));
        compared++;
      }
    }
    assertTrue(compared > 50);
    assertTrue(worst <= 1e-4, "max |diff| of last hidden state = " + worst);
  }

  @Test
  void meanPooledEmbeddingsMatchOnnxRuntime() throws Exception {
    BertEncoder enc = BertEncoder.fromWeights(base.config(), base.weights(), DataType.FLOAT, false);
    INDArray ours = BertClassifier.embed(enc, batch.inputIds(), batch.attentionMask(), DataType.FLOAT);
    float[][][] ref = onnxHidden(batch);
    for (int i = 0; i < batch.size(); i++) {
      double[] mean = new double[384];
      int real = 0;
      for (int j = 0; j < batch.width(); j++) {
        if (batch.attentionMask()[i][j] == 0) continue;
        real++;
        for (int k = 0; k < 384; k++) mean[k] += ref[i][j][k];
      }
      double dot = 0, nr = 0, no = 0;
      for (int k = 0; k < 384; k++) {
        double r = mean[k] / real, o = ours.getDouble(i, k);
        dot += r * o;
        nr += r * r;
        no += o * o;
      }
      assertEquals(1.0, Math.sqrt(no), 1e-5, "embedding is L2-normalised");
      double cos = dot / Math.sqrt(nr * no);
      assertTrue(cos >= 0.99999, "sentence " + i + ": cosine " + cos);
    }
  }
}
