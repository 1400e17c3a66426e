package dev.peftspark.core.io;

import java.util.List;

/** One ONNX graph node: its operator and the names of the values it reads and produces. */
public record OnnxNode(String name, String opType, String domain, List<String> inputs, List<String> outputs) {

  public OnnxNode {
    inputs = List.copyOf(inputs);
    outputs = List.copyOf(outputs);
  }

  static OnnxNode parse(ProtoReader r) throws OnnxFormatException {
    String name = "";
    String opType = "";
    String domain = "";
    List<String> inputs = new java.util.ArrayList<>();
    List<String> outputs = new java.util.ArrayList<>();
    while (r.hasMore()) {
      int tag = r.readTag();
      switch (tag >>> 3) {
        case 1 -> inputs.add(r.readString(tag));
        case 2 -> outputs.add(r.readString(tag));
        case 3 -> name = r.readString(tag);
        case 4 -> opType = r.readString(tag);
        case 7 -> domain = r.readString(tag);
        default -> r.skip(tag & 7);
      }
    }
    return new OnnxNode(name, opType, domain, inputs, outputs);
  }
}
