package dev.peftspark.core.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The parts of an ONNX model needed to take its weights: the graph's nodes, inputs, outputs and
 * initializers, read with a hand-written protobuf parser (no protobuf dependency). Initializer data
 * stays a slice of the input buffer until loaded.
 */
public final class OnnxModel {
  private final String source;
  private long irVersion;
  private String producerName = "";
  private final Map<String, Long> opsets = new LinkedHashMap<>();
  private String graphName = "";
  private final List<OnnxNode> nodes = new ArrayList<>();
  private final List<String> graphInputs = new ArrayList<>();
  private final List<String> graphOutputs = new ArrayList<>();
  private final Map<String, OnnxInitializer> initializers = new LinkedHashMap<>();
  private final Map<String, List<OnnxNode>> consumers = new HashMap<>();
  private final Map<String, OnnxNode> producers = new HashMap<>();

  private OnnxModel(String source) {
    this.source = source;
  }

  /** Memory-maps and parses {@code file} (ONNX files are at most 2 GiB, a protobuf limit). */
  public static OnnxModel read(Path file) throws IOException {
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      if (channel.size() > Integer.MAX_VALUE) {
        throw new OnnxFormatException(file.toString(), "file is " + channel.size()
            + " bytes; models with external data files are not supported");
      }
      return parse(channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size()), file.toString());
    }
  }

  /** Parses a ModelProto; {@code source} names it in error messages. The buffer must not change later. */
  public static OnnxModel parse(ByteBuffer bytes, String source) throws OnnxFormatException {
    OnnxModel model = new OnnxModel(source);
    model.readModel(new ProtoReader(bytes, 0, source, "ModelProto"));
    return model;
  }

  public static OnnxModel parse(byte[] bytes, String source) throws OnnxFormatException {
    return parse(ByteBuffer.wrap(bytes), source);
  }

  public String source() { return source; }

  public long irVersion() { return irVersion; }

  public String producerName() { return producerName; }

  /** Operator set versions by domain ("" is the default ONNX domain). */
  public Map<String, Long> opsets() { return Collections.unmodifiableMap(opsets); }

  public String graphName() { return graphName; }

  /** Nodes in graph order (ONNX requires topological order). */
  public List<OnnxNode> nodes() { return Collections.unmodifiableList(nodes); }

  public List<String> graphInputs() { return Collections.unmodifiableList(graphInputs); }

  public List<String> graphOutputs() { return Collections.unmodifiableList(graphOutputs); }

  /** Initializers in file order. */
  public List<OnnxInitializer> initializers() { return List.copyOf(initializers.values()); }

  public boolean hasInitializer(String name) { return initializers.containsKey(name); }

  public OnnxInitializer initializer(String name) {
    OnnxInitializer init = initializers.get(name);
    if (init == null) {
      throw new IllegalArgumentException(source + ": no initializer named '" + name + "' among "
          + initializers.size());
    }
    return init;
  }

  /** The named initializer as an ND4J array (see {@link OnnxInitializer#toINDArray()}). */
  public INDArray load(String name) throws OnnxFormatException {
    return initializer(name).toINDArray();
  }

  /** Every initializer as an array, in file order. */
  public Map<String, INDArray> loadInitializers() throws OnnxFormatException {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (OnnxInitializer init : initializers.values()) {
      out.put(init.name(), init.toINDArray());
    }
    return out;
  }

  /** Nodes that take {@code value} as an input, in graph order. */
  public List<OnnxNode> consumers(String value) {
    return Collections.unmodifiableList(consumers.getOrDefault(value, List.of()));
  }

  /** The node that outputs {@code value}, if any (initializers and graph inputs have none). */
  public Optional<OnnxNode> producer(String value) {
    return Optional.ofNullable(producers.get(value));
  }

  private void readModel(ProtoReader r) throws OnnxFormatException {
    boolean sawGraph = false;
    while (r.hasMore()) {
      int tag = r.readTag();
      switch (tag >>> 3) {
        case 1 -> irVersion = r.readVarint(tag);
        case 2 -> producerName = r.readString(tag);
        case 7 -> {
          readGraph(r.readMessage(tag, "GraphProto"));
          sawGraph = true;
        }
        case 8 -> readOpset(r.readMessage(tag, "OperatorSetIdProto"));
        default -> r.skip(tag & 7);
      }
    }
    if (!sawGraph) {
      throw new OnnxFormatException(source, "no graph (ModelProto field 7) found; not an ONNX model?");
    }
  }

  private void readOpset(ProtoReader r) throws OnnxFormatException {
    String domain = "";
    long version = 0;
    while (r.hasMore()) {
      int tag = r.readTag();
      switch (tag >>> 3) {
        case 1 -> domain = r.readString(tag);
        case 2 -> version = r.readVarint(tag);
        default -> r.skip(tag & 7);
      }
    }
    opsets.put(domain, version);
  }

  private void readGraph(ProtoReader r) throws OnnxFormatException {
    while (r.hasMore()) {
      int tag = r.readTag();
      switch (tag >>> 3) {
        case 1 -> addNode(OnnxNode.parse(r.readMessage(tag, "NodeProto")));
        case 2 -> graphName = r.readString(tag);
        case 5 -> addInitializer(OnnxInitializer.parse(r.readMessage(tag, "TensorProto"), source));
        case 11 -> graphInputs.add(valueInfoName(r.readMessage(tag, "ValueInfoProto")));
        case 12 -> graphOutputs.add(valueInfoName(r.readMessage(tag, "ValueInfoProto")));
        default -> r.skip(tag & 7);
      }
    }
  }

  private void addNode(OnnxNode node) {
    nodes.add(node);
    for (String input : node.inputs()) {
      if (!input.isEmpty()) {
        consumers.computeIfAbsent(input, k -> new ArrayList<>()).add(node);
      }
    }
    node.outputs().forEach(output -> producers.put(output, node));
  }

  private void addInitializer(OnnxInitializer init) throws OnnxFormatException {
    if (initializers.putIfAbsent(init.name(), init) != null) {
      throw new OnnxFormatException(source, "two initializers are named '" + init.name() + "'");
    }
  }

  private static String valueInfoName(ProtoReader r) throws OnnxFormatException {
    String name = "";
    while (r.hasMore()) {
      int tag = r.readTag();
      if (tag >>> 3 == 1) {
        name = r.readString(tag);
      } else {
        r.skip(tag & 7);
      }
    }
    return name;
  }
}
