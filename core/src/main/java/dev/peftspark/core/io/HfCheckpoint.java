package dev.peftspark.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The weights of a Hugging Face model directory: {@code model.safetensors}, or the shards that
 * {@code model.safetensors.index.json} lists. F16 and BF16 tensors are widened to FLOAT (see {@link SafeTensors#load}).
 */
public final class HfCheckpoint {
  public static final String SINGLE = "model.safetensors";
  public static final String INDEX = "model.safetensors.index.json";

  private HfCheckpoint() {}

  public static Map<String, INDArray> readWeights(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) throw new IllegalArgumentException(dir + ": not a directory (expected a Hugging Face model directory)");
    Path single = dir.resolve(SINGLE), index = dir.resolve(INDEX);
    if (Files.isRegularFile(single)) return SafeTensors.loadAll(single);
    if (Files.isRegularFile(index)) return readSharded(dir, index);
    String hint = Files.exists(dir.resolve("pytorch_model.bin")) ? " (pytorch_model.bin is not read: convert it to safetensors)" : "";
    throw new IllegalArgumentException(dir + ": holds neither " + SINGLE + " nor " + INDEX + hint);
  }

  private static Map<String, INDArray> readSharded(Path dir, Path index) throws IOException {
    JsonNode map;
    try {
      map = new ObjectMapper().readTree(Files.readAllBytes(index)).get("weight_map");
    } catch (IOException e) {
      throw new IllegalArgumentException(index + ": not valid JSON: " + e.getMessage());
    }
    if (map == null || !map.isObject()) throw new IllegalArgumentException(index + ": no 'weight_map' object (tensor name -> shard file)");
    Map<String, String> byTensor = new TreeMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
      var e = it.next();
      if (!e.getValue().isTextual()) throw new IllegalArgumentException(index + ": weight_map['" + e.getKey() + "'] must be a file name");
      byTensor.put(e.getKey(), e.getValue().asText());
    }
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (String shard : new java.util.TreeSet<>(byTensor.values())) {
      Path file = dir.resolve(shard).normalize();
      if (!file.startsWith(dir.normalize()) || !Files.isRegularFile(file))
        throw new IllegalArgumentException(index + ": shard '" + shard + "' is not a file in " + dir);
      try (SafeTensors st = SafeTensors.open(file)) {
        for (var e : byTensor.entrySet()) {
          if (!e.getValue().equals(shard)) continue;
          if (!st.contains(e.getKey()))
            throw new IllegalArgumentException(index + ": lists '" + e.getKey() + "' in " + shard + ", which does not hold it");
          out.put(e.getKey(), st.load(e.getKey()));
        }
      }
    }
    return out;
  }
}
