package dev.peftspark.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The parser against protobuf bytes encoded by hand (field numbers from onnx.proto). */
class OnnxModelTest {

  private static ProtoWriter tensor(String name, int dataType, long... dims) {
    ProtoWriter t = new ProtoWriter();
    for (long d : dims) {
      t.varint(1, d); // unpacked dims
    }
    return t.varint(2, dataType).string(8, name);
  }

  private static ProtoWriter node(String name, String op, List<String> inputs, List<String> outputs) {
    ProtoWriter n = new ProtoWriter();
    inputs.forEach(i -> n.string(1, i));
    outputs.forEach(o -> n.string(2, o));
    return n.string(3, name).string(4, op).string(6, "ignored doc string");
  }

  private static byte[] model(ProtoWriter graph) {
    return new ProtoWriter()
        .varint(1, 8)
        .string(2, "hand")
        .message(8, new ProtoWriter().string(1, "").varint(2, 17))
        .message(7, graph)
        .toByteArray();
  }

  private static ProtoWriter smallGraph() {
    ByteBuffer raw = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : new float[] {1, 2, 3, 4, 5, 6}) {
      raw.putFloat(v);
    }
    ByteBuffer halves = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 0x3C00).putShort((short) 0xC000);
    return new ProtoWriter()
        .message(1, node("mm", "MatMul", List.of("x", "W"), List.of("xw")))
        .message(1, node("add", "Add", List.of("b", "xw"), List.of("y")))
        .string(2, "g")
        .message(5, tensor("W", OnnxInitializer.FLOAT, 2, 3).bytes(9, raw.array()))
        .message(5, new ProtoWriter().packedVarints(1, 3).varint(2, OnnxInitializer.FLOAT).string(8, "b")
            .packedFloats(4, 0.5f, -0.5f, 0.25f))
        .message(5, tensor("loose", OnnxInitializer.FLOAT, 2).fixed32(4, Float.floatToIntBits(7f))
            .fixed32(4, Float.floatToIntBits(-8f)))
        .message(5, tensor("ids", OnnxInitializer.INT64, 3).packedVarints(7, 5, -1, 1L << 40))
        .message(5, tensor("ints", OnnxInitializer.INT32, 2).packedVarints(5, -7, 9))
        .message(5, tensor("d", OnnxInitializer.DOUBLE, 1).packedDoubles(10, Math.PI))
        .message(5, tensor("h", OnnxInitializer.FLOAT16, 2).bytes(9, halves.array()))
        .message(5, tensor("scalar", OnnxInitializer.FLOAT).packedFloats(4, 42f))
        .message(11, new ProtoWriter().string(1, "x"))
        .message(12, new ProtoWriter().string(1, "y"))
        .string(10, "graph doc string, skipped");
  }

  @Test
  void readsGraphStructure() throws Exception {
    OnnxModel m = OnnxModel.parse(model(smallGraph()), "hand.onnx");
    assertEquals(8, m.irVersion());
    assertEquals("hand", m.producerName());
    assertEquals(Map.of("", 17L), m.opsets());
    assertEquals("g", m.graphName());
    assertEquals(List.of("x"), m.graphInputs());
    assertEquals(List.of("y"), m.graphOutputs());
    assertEquals(List.of("MatMul", "Add"), m.nodes().stream().map(OnnxNode::opType).toList());
    assertEquals(List.of("b", "xw"), m.nodes().get(1).inputs());
    assertEquals("add", m.consumers("xw").get(0).name());
    assertEquals("mm", m.producer("xw").orElseThrow().name());
    assertTrue(m.producer("W").isEmpty());
    assertEquals(List.of("W", "b", "loose", "ids", "ints", "d", "h", "scalar"),
        m.initializers().stream().map(OnnxInitializer::name).toList());
  }

  @Test
  void decodesEveryStorageForm() throws Exception {
    OnnxModel m = OnnxModel.parse(ByteBuffer.wrap(model(smallGraph())), "hand.onnx");
    INDArray w = m.load("W");
    assertEquals(DataType.FLOAT, w.dataType());
    assertArrayEquals(new long[] {2, 3}, w.shape());
    assertEquals(6f, w.getFloat(1, 2));
    assertEquals(2f, w.getFloat(0, 1));
    assertArrayEquals(new float[] {0.5f, -0.5f, 0.25f}, m.load("b").data().asFloat());
    assertArrayEquals(new float[] {7f, -8f}, m.load("loose").data().asFloat());
    INDArray ids = m.load("ids");
    assertEquals(DataType.LONG, ids.dataType());
    assertArrayEquals(new long[] {5, -1, 1L << 40}, ids.data().asLong());
    INDArray ints = m.load("ints");
    assertEquals(DataType.INT, ints.dataType());
    assertArrayEquals(new int[] {-7, 9}, ints.data().asInt());
    assertEquals(Math.PI, m.load("d").getDouble(0));
    assertArrayEquals(new float[] {1f, -2f}, m.load("h").data().asFloat());
    INDArray scalar = m.load("scalar");
    assertEquals(0, scalar.rank());
    assertEquals(42f, scalar.getFloat(0));
    assertEquals(8, m.loadInitializers().size());
  }

  @Test
  void reportsBadInputWithSourceAndProblem() {
    byte[] good = model(smallGraph());
    OnnxFormatException truncated = assertThrows(OnnxFormatException.class,
        () -> OnnxModel.parse(Arrays.copyOf(good, good.length - 30), "cut.onnx"));
    assertTrue(truncated.getMessage().startsWith("cut.onnx: ModelProto at byte "), truncated.getMessage());
    assertTrue(truncated.getMessage().contains("runs past the end"), truncated.getMessage());

    OnnxFormatException noGraph = assertThrows(OnnxFormatException.class,
        () -> OnnxModel.parse(new ProtoWriter().varint(1, 8).toByteArray(), "empty.onnx"));
    assertEquals("empty.onnx: no graph (ModelProto field 7) found; not an ONNX model?", noGraph.getMessage());

    ProtoWriter shortRaw = new ProtoWriter().message(5, tensor("w", OnnxInitializer.FLOAT, 2, 2).bytes(9, new byte[12]));
    OnnxFormatException mismatch = assertThrows(OnnxFormatException.class,
        () -> OnnxModel.parse(model(shortRaw), "short.onnx").load("w"));
    assertEquals("short.onnx: initializer 'w': raw_data holds 12 bytes, but FLOAT[2, 2] needs 16", mismatch.getMessage());

    ProtoWriter external = new ProtoWriter().message(5, tensor("e", OnnxInitializer.FLOAT, 1).varint(14, 1));
    OnnxFormatException ext = assertThrows(OnnxFormatException.class,
        () -> OnnxModel.parse(model(external), "ext.onnx").load("e"));
    assertTrue(ext.getMessage().contains("initializer 'e': data is stored in an external file"), ext.getMessage());

    ProtoWriter strings = new ProtoWriter().message(5, tensor("s", 8, 1).string(6, "text"));
    OnnxFormatException unsupported = assertThrows(OnnxFormatException.class,
        () -> OnnxModel.parse(model(strings), "str.onnx").load("s"));
    assertTrue(unsupported.getMessage().contains("element type STRING is not supported"), unsupported.getMessage());

    OnnxFormatException wrongWire = assertThrows(OnnxFormatException.class,
        () -> OnnxModel.parse(new ProtoWriter().varint(7, 3).toByteArray(), "wire.onnx"));
    assertTrue(wrongWire.getMessage().contains("field 7 has wire type 0, expected 2"), wrongWire.getMessage());
  }
}
