package dev.peftspark.spark.dist;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.spark.job.BaseModel;
import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.spark.job.CausalLmJob;
import dev.peftspark.spark.job.ClassificationJob;
import dev.peftspark.spark.TestModels;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Data, base model, checkpoints and output on a real HDFS (MiniDFSCluster in this JVM). */
class HdfsTest {
  static MiniDFSCluster dfs;
  static FileSystem fs;
  @TempDir static Path dfsDir;
  @TempDir Path tmp;

  @BeforeAll
  static void startHdfs() throws Exception {
    Configuration conf = new Configuration();
    dfs = new MiniDFSCluster.Builder(conf, dfsDir.toFile()).numDataNodes(1).build();
    dfs.waitActive();
    fs = dfs.getFileSystem();
  }

  @AfterAll
  static void stopHdfs() {
    if (dfs != null) dfs.shutdown();
  }

  static String put(Path local, String name) throws Exception {
    org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path("/peft/" + name);
    fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(local.toUri()), p);
    return fs.makeQualified(p).toString();
  }

  /** all-MiniLM-L6-v2 as a Hugging Face model directory (config.json, model.safetensors, tokenizer.json). */
  static Path miniLmDirectory(Path dir) throws Exception {
    BaseModel m = BaseModel.load(BaseModel.MINILM);
    BertConfig c = m.config();
    Files.createDirectories(dir);
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("_name_or_path", m.hfId());
    json.put("vocab_size", c.vocabSize());
    json.put("hidden_size", c.hiddenSize());
    json.put("num_hidden_layers", c.numHiddenLayers());
    json.put("num_attention_heads", c.numAttentionHeads());
    json.put("intermediate_size", c.intermediateSize());
    json.put("max_position_embeddings", c.maxPositionEmbeddings());
    json.put("type_vocab_size", c.typeVocabSize());
    json.put("layer_norm_eps", c.layerNormEps());
    new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), json);
    SafeTensors.write(dir.resolve("model.safetensors"), m.weights(), Map.of("format", "pt"));
    Files.copy(m.tokenizer(), dir.resolve("tokenizer.json"));
    return dir;
  }

  @Test
  void trainsFromHdfsDataAndModelWithCheckpointsAndOutputOnHdfs() throws Exception {
    Path train = TestSpark.slice("demo:sentiment/amazon.json", 96, tmp);
    Path test = TestSpark.slice("demo:sentiment/yelp.json", 16, tmp);
    String model = put(miniLmDirectory(tmp.resolve("minilm-hf")), "minilm-hf");
    String out = fs.makeQualified(new org.apache.hadoop.fs.Path("/peft/out")).toString();
    var sc = TestSpark.context();
    String[] sets = {"train.batch_size=16", "train.max_steps=4", "checkpoint.every_steps=2", "model=" + model};
    TrainSummary s = ClassificationJob.train(TestSpark.config(put(train, "train.jsonl"), put(test, "test.jsonl"),
        out, "spark", sets), new TrainListener() {}, new SparkFitter(sc));
    assertEquals(4, s.steps());
    assertTrue(out.startsWith("hdfs://"), out);
    for (String f : new String[] {AdapterFiles.WEIGHTS, AdapterFiles.CONFIG, "metrics.jsonl",
        "checkpoints/step-4/state.bin", "checkpoints/step-2/state.bin"}) {
      assertTrue(fs.exists(new org.apache.hadoop.fs.Path(out, f)), f + " on HDFS");
    }

    // The same run from local files and the built-in model gives the same adapter.
    Path local = tmp.resolve("local");
    ClassificationJob.train(TestSpark.config(train, test, local, "spark", "train.batch_size=16",
        "train.max_steps=4"), new TrainListener() {}, new SparkFitter(sc));
    Path fetched = tmp.resolve("fetched");
    Files.createDirectories(fetched);
    fs.copyToLocalFile(new org.apache.hadoop.fs.Path(out, AdapterFiles.WEIGHTS),
        new org.apache.hadoop.fs.Path(fetched.resolve(AdapterFiles.WEIGHTS).toUri()));
    assertEquals(0.0, TestSpark.maxDiff(TestSpark.adapter(local), TestSpark.adapter(fetched)));
  }

  /** A causal LM too: model directory and text on HDFS, checkpoints and output on HDFS, same adapter as local files. */
  @Test
  void causalLmTrainsFromHdfsWithOutputOnHdfs() throws Exception {
    Path modelDir = TestModels.tinyLlamaDir(tmp.resolve("tiny-llama"));
    Path train = tmp.resolve("lm-train.txt");
    Files.write(train, TestModels.toySentences(40, 3));
    String model = put(modelDir, "tiny-llama"), data = put(train, "lm-train.txt");
    String out = fs.makeQualified(new org.apache.hadoop.fs.Path("/peft/lm-out")).toString();
    var sc = TestSpark.context();
    TrainSummary s = CausalLmJob.train(lmConfig(model, data, out, "checkpoint.every_steps=2"), new TrainListener() {},
        new LmSparkFitter(sc));
    assertEquals(4, s.steps());
    assertEquals(out, s.outputDir());
    for (String f : new String[] {"adapter_model.safetensors", "adapter_config.json", "metrics.jsonl",
        "checkpoints/step-4/state.bin", "checkpoints/step-2/state.bin"}) {
      assertTrue(fs.exists(new org.apache.hadoop.fs.Path(out, f)), f + " on HDFS");
    }
    Path local = tmp.resolve("lm-local");
    CausalLmJob.train(lmConfig(modelDir.toString(), train.toString(), local.toString()), new TrainListener() {},
        new LmSparkFitter(sc));
    Path fetched = tmp.resolve("lm-fetched");
    Files.createDirectories(fetched);
    fs.copyToLocalFile(new org.apache.hadoop.fs.Path(out, "adapter_model.safetensors"),
        new org.apache.hadoop.fs.Path(fetched.resolve("adapter_model.safetensors").toUri()));
    assertEquals(0.0, TestSpark.maxDiff(SafeTensors.loadAll(local.resolve("adapter_model.safetensors")),
        SafeTensors.loadAll(fetched.resolve("adapter_model.safetensors"))));
  }

  private static JobConfig lmConfig(String model, String train, String out, String... more) {
    java.util.List<String> sets = new java.util.ArrayList<>(java.util.List.of("output_dir=" + out, "runner=spark",
        "spark.master=local[2]", "spark.partitions=2"));
    sets.addAll(java.util.List.of(more));
    return JobConfigLoader.fromYaml("""
        task: causal_lm
        model: %s
        data:
          train: [%s]
          max_length: 16
          packing: false
        train:
          max_steps: 4
          batch_size: 8
          lr: 0.01
          log_every: 100
        lora:
          r: 4
          alpha: 8
          target_modules: [q_proj, v_proj]
        """.formatted(model, train), "test", sets);
  }
}
