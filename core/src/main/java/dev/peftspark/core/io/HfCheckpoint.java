package dev.peftspark.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The weights of a Hugging Face model directory: {@code model.safetensors}, or the shards that
 * {@code model.safetensors.index.json} lists. F16 and BF16 tensors are widened to FLOAT (see {@link SafeTensors#load}).
 */
public final class HfCheckpoint {
  public static final String SINGLE = "model.safetensors";
  public static final String INDEX = "model.safetensors.index.json";

  private HfCheckpoint() {}

  /** Every tensor, read at once (single file: file order; shards: by shard, then by name). */
  public static Map<String, INDArray> readWeights(Path dir) throws IOException {
    try (Lazy tensors = open(dir)) {
      return new LinkedHashMap<>(tensors);
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }

  /**
   * The directory's tensors as a map that reads each one from its file when asked and keeps none, so a caller that
   * holds only some (or converts each, as QLoRA quantizes) never has the whole checkpoint in memory. Close it after.
   */
  public static Lazy open(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) throw new IllegalArgumentException(dir + ": not a directory (expected a Hugging Face model directory)");
    Path single = dir.resolve(SINGLE), index = dir.resolve(INDEX);
    Lazy out = new Lazy();
    try {
      if (Files.isRegularFile(single)) {
        SafeTensors st = out.add(SafeTensors.open(single));
        for (TensorInfo t : st.tensors()) out.byName.put(t.name(), st);
      } else if (Files.isRegularFile(index)) {
        openShards(dir, index, out);
      } else {
        String hint = Files.exists(dir.resolve("pytorch_model.bin")) ? " (pytorch_model.bin is not read: convert it to safetensors)" : "";
        throw new IllegalArgumentException(dir + ": holds neither " + SINGLE + " nor " + INDEX + hint);
      }
      return out;
    } catch (IOException | RuntimeException e) {
      out.close();
      throw e;
    }
  }

  private static void openShards(Path dir, Path index, Lazy out) throws IOException {
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
    for (String shard : new java.util.TreeSet<>(byTensor.values())) {
      Path file = dir.resolve(shard).normalize();
      if (!file.startsWith(dir.normalize()) || !Files.isRegularFile(file))
        throw new IllegalArgumentException(index + ": shard '" + shard + "' is not a file in " + dir);
      SafeTensors st = out.add(SafeTensors.open(file));
      for (var e : byTensor.entrySet()) {
        if (!e.getValue().equals(shard)) continue;
        if (!st.contains(e.getKey()))
          throw new IllegalArgumentException(index + ": lists '" + e.getKey() + "' in " + shard + ", which does not hold it");
        out.byName.put(e.getKey(), st);
      }
    }
  }

  /**
   * Tensors read from their files on every {@link #get} (a new array each time, owned by the caller); a failed
   * read is an {@link UncheckedIOException}. Iterating it reads them all.
   */
  public static final class Lazy extends AbstractMap<String, INDArray> implements Closeable {
    private final Map<String, SafeTensors> byName = new LinkedHashMap<>();
    private final List<SafeTensors> files = new ArrayList<>();

    private Lazy() {}

    private SafeTensors add(SafeTensors st) {
      files.add(st);
      return st;
    }

    @Override
    public INDArray get(Object name) {
      SafeTensors st = byName.get(name);
      if (st == null) return null;
      try {
        return st.load((String) name);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    @Override public boolean containsKey(Object name) { return byName.containsKey(name); }
    @Override public Set<String> keySet() { return byName.keySet(); }
    @Override public int size() { return byName.size(); }

    @Override
    public Set<Entry<String, INDArray>> entrySet() {
      Set<Entry<String, INDArray>> all = new LinkedHashSet<>();
      for (String name : byName.keySet()) all.add(Map.entry(name, get(name)));
      return all;
    }

    @Override
    public void close() throws IOException {
      for (SafeTensors st : files) st.close();
    }
  }
}
