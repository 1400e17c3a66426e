package dev.peftspark.spark.job;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.peft.AdapterCombine;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.AdapterMerge;
import dev.peftspark.core.peft.PeftClassifier;
import org.nd4j.linalg.api.buffer.DataType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * The {@code combine} and {@code merge} commands: PEFT's add_weighted_adapter into a new adapter directory, and
 * merge_and_unload into a plain Hugging Face BERT model directory. Both write into a temporary sibling folder and
 * rename it, so a failure leaves nothing behind.
 */
public final class AdapterTools {
  private static final Logger log = LoggerFactory.getLogger(AdapterTools.class);
  private static final DataType DTYPE = DataType.FLOAT;

  private AdapterTools() {}

  /** One {@code --adapter NAME=DIR:WEIGHT}. */
  public record Input(String name, Path dir, double weight) {
    public static Input parse(String spec) {
      int eq = spec.indexOf('='), colon = spec.lastIndexOf(':');
      if (eq <= 0 || colon <= eq + 1 || colon == spec.length() - 1) {
        throw new IllegalArgumentException("--adapter '" + spec + "': expected NAME=DIR:WEIGHT, e.g. sst=runs/sst:0.5");
      }
      double w;
      try {
        w = Double.parseDouble(spec.substring(colon + 1));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("--adapter '" + spec + "': weight '" + spec.substring(colon + 1) + "' is not a number");
      }
      return new Input(spec.substring(0, eq), Path.of(spec.substring(eq + 1, colon)), w);
    }
  }

  public static void combine(String model, List<Input> inputs, String type, int rank, Path out) throws IOException {
    AdapterCombine.Type t = AdapterCombine.Type.parse(type);
    refuseExisting(out);
    BaseModel base = BaseModel.load(model);
    List<AdapterCombine.Weighted> adapters = new ArrayList<>();
    List<String> labels = null;
    for (Input in : inputs) {
      if (adapters.stream().anyMatch(a -> a.name().equals(in.name())))
        throw new IllegalArgumentException("--adapter: the name '" + in.name() + "' is given twice");
      adapters.add(new AdapterCombine.Weighted(in.name(), AdapterFiles.load(in.dir(), base.config(), base.weights(), DTYPE), in.weight()));
      if (labels == null) labels = AdapterFiles.info(in.dir()).labels();
    }
    PeftClassifier combined = AdapterCombine.combine(adapters, t, rank, base.config(), base.weights(), DTYPE);
    List<String> finalLabels = labels;
    writeDir(out, tmp -> AdapterFiles.save(tmp, combined, finalLabels, base.name(), base.hfId()));
    log.info("combined {} adapters ({}) into {} (r = lora_alpha = {})", inputs.size(), t, out, combined.lora().r());
  }

  public static void merge(String model, Path adapter, Path out) throws IOException {
    refuseExisting(out);
    BaseModel base = BaseModel.load(model);
    AdapterFiles.Info info = AdapterFiles.info(adapter);
    PeftClassifier m = AdapterFiles.load(adapter, base.config(), base.weights(), DTYPE);
    var merged = AdapterMerge.mergedWeights(m);
    writeDir(out, tmp -> {
      writeConfig(tmp.resolve("config.json"), base, info);
      SafeTensors.write(tmp.resolve("model.safetensors"), merged, java.util.Map.of("format", "pt"));
      Files.copy(base.tokenizer(), tmp.resolve("tokenizer.json"));
    });
    log.info("merged {} ({}) into {}", adapter, info.method().key(), out);
  }

  /** HF BertConfig keys BaseModel reads, plus the head's labels and pooling. */
  private static void writeConfig(Path file, BaseModel base, AdapterFiles.Info info) throws IOException {
    BertConfig c = base.config();
    ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode n = json.createObjectNode();
    n.put("_name_or_path", base.hfId());
    n.put("model_type", "bert");
    n.putArray("architectures").add("BertForSequenceClassification");
    n.put("vocab_size", c.vocabSize());
    n.put("hidden_size", c.hiddenSize());
    n.put("num_hidden_layers", c.numHiddenLayers());
    n.put("num_attention_heads", c.numAttentionHeads());
    n.put("intermediate_size", c.intermediateSize());
    n.put("max_position_embeddings", c.maxPositionEmbeddings());
    n.put("type_vocab_size", c.typeVocabSize());
    n.put("layer_norm_eps", c.layerNormEps());
    n.put("hidden_act", "gelu");
    ObjectNode id2label = n.putObject("id2label"), label2id = n.putObject("label2id");
    for (int i = 0; i < info.labels().size(); i++) {
      id2label.put(Integer.toString(i), info.labels().get(i));
      label2id.put(info.labels().get(i), i);
    }
    n.put("peft_spark_pooling", info.pooling().name().toLowerCase());
    json.writeValue(file.toFile(), n);
  }

  private interface DirBody {
    void write(Path tmp) throws IOException;
  }

  private static void refuseExisting(Path out) throws IOException {
    if (Files.exists(out) && !(Files.isDirectory(out) && isEmpty(out))) {
      throw new IOException("--out " + out + " already exists; choose a new directory");
    }
  }

  private static boolean isEmpty(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.findAny().isEmpty();
    }
  }

  private static void writeDir(Path out, DirBody body) throws IOException {
    Path parent = out.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Path tmp = Files.createTempDirectory(parent, "." + out.getFileName() + ".tmp");
    try {
      body.write(tmp);
      if (Files.isDirectory(out)) Files.delete(out);   // empty (checked above)
      Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      if (Files.exists(tmp)) {
        try (Stream<Path> s = Files.walk(tmp)) {
          for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
      }
    }
  }
}
