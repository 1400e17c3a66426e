package dev.peftspark.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

class SafeTensorsTest {
  @TempDir Path dir;

  /** A file laid out by hand from the spec, so the reader is not only checked against our writer. */
  @Test
  void readsAFileWrittenByHandFromTheSpec() throws IOException {
    String header = "{\"__metadata__\":{\"format\":\"pt\"},"
        + "\"half\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
        + "\"brain\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
        + "\"f\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]},"
        + "\"step\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]},"
        + "\"bytes\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[40,43]},"
        + "\"mask\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[43,45]}}";
    ByteBuffer data = ByteBuffer.allocate(45).order(ByteOrder.LITTLE_ENDIAN);
    for (int bits : new int[] {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x7E00}) {
      data.putShort((short) bits);
    }
    data.putShort((short) 0x3F80).putShort((short) 0xC040);
    data.putFloat(1.5f).putFloat(-2.25f).putFloat(3f).putFloat(1e-3f);
    data.putLong(1234567890123L);
    data.put((byte) 0).put((byte) 128).put((byte) 255);
    data.put((byte) 1).put((byte) 0);
    Path file = craft("hand.safetensors", header.getBytes(StandardCharsets.UTF_8), data.array());

    try (SafeTensors st = SafeTensors.open(file)) {
      assertEquals(Map.of("format", "pt"), st.metadata());
      assertEquals(List.of("half", "brain", "f", "step", "bytes", "mask"),
          st.tensors().stream().map(TensorInfo::name).toList());
      assertEquals(new TensorInfo("half", DType.F16, new long[] {2, 3}, 0, 12), st.info("half"));

      INDArray half = st.load("half");
      assertEquals(DataType.FLOAT, half.dataType());
      assertArrayEquals(new long[] {2, 3}, half.shape());
      float[] h = half.data().asFloat();
      assertEquals(1.0f, h[0]);
      assertEquals(-2.0f, h[1]);
      assertEquals(65504f, h[2]);
      assertEquals(0x1p-24f, h[3]);
      assertEquals(Float.POSITIVE_INFINITY, h[4]);
      assertTrue(Float.isNaN(h[5]));
      assertEquals(-2.0f, half.getFloat(0, 1));

      assertArrayEquals(new float[] {1.0f, -3.0f}, st.load("brain").data().asFloat());
      INDArray f = st.load("f");
      assertEquals(DataType.FLOAT, f.dataType());
      assertEquals(-2.25f, f.getFloat(0, 1));
      assertEquals(1e-3f, f.getFloat(1, 1));
      INDArray step = st.load("step");
      assertEquals(DataType.LONG, step.dataType());
      assertEquals(0, step.rank());
      assertEquals(1234567890123L, step.getLong(0));
      INDArray bytes = st.load("bytes");
      assertEquals(DataType.UBYTE, bytes.dataType());
      assertEquals(255, bytes.getInt(2));
      assertEquals(128, bytes.getInt(1));
      INDArray mask = st.load("mask");
      assertEquals(DataType.BOOL, mask.dataType());
      assertTrue(mask.getDouble(0) != 0);
      assertFalse(mask.getDouble(1) != 0);

      ByteBuffer raw = st.raw("brain");
      assertEquals(4, raw.remaining());
      assertEquals((short) 0xC040, raw.getShort(2));
      assertTrue(raw.isReadOnly());
      assertEquals(DataType.DOUBLE, st.loadAs("f", DataType.DOUBLE).dataType());
    }
  }

  @Test
  void roundTripsEveryDtype() throws IOException {
    Map<String, INDArray> in = new LinkedHashMap<>();
    in.put("f32", Nd4j.createFromArray(new float[] {1.5f, -0f, Float.MAX_VALUE, Float.MIN_VALUE, 7f, 8f}).reshape(2, 3));
    in.put("f64", Nd4j.createFromArray(new double[] {Math.PI, -1e300, Double.MIN_VALUE}));
    in.put("f16", halfFromBits(DataType.HALF, 0x3C00, 0xC000, 0x7BFF, 0x0001, 0xFC00, 0x7E00));
    in.put("bf16", halfFromBits(DataType.BFLOAT16, 0x3F80, 0xC040, 0x7F80, 0x0001));
    in.put("i64", Nd4j.createFromArray(new long[] {Long.MIN_VALUE, -1, Long.MAX_VALUE}));
    in.put("i32", Nd4j.createFromArray(new int[][] {{Integer.MIN_VALUE, 0}, {1, Integer.MAX_VALUE}}));
    in.put("i8", Nd4j.create(new byte[] {-128, -1, 0, 127}, new long[] {4}, DataType.BYTE));
    in.put("u8", Nd4j.create(new byte[] {0, (byte) 200, (byte) 255}, new long[] {3}, DataType.UBYTE));
    in.put("bool", Nd4j.createFromArray(new boolean[] {true, false, true}));
    Path file = dir.resolve("all.safetensors");
    SafeTensors.write(file, in, Map.of("k", "v"));

    try (SafeTensors st = SafeTensors.open(file)) {
      assertEquals(List.of(DType.F32, DType.F64, DType.F16, DType.BF16, DType.I64, DType.I32, DType.I8,
          DType.U8, DType.BOOL), st.tensors().stream().map(TensorInfo::dtype).toList());
      for (String name : List.of("f32", "f64", "i64", "i32", "i8", "u8", "bool")) {
        INDArray back = st.load(name);
        assertEquals(in.get(name).dataType(), back.dataType(), name);
        assertArrayEquals(in.get(name).shape(), back.shape(), name);
        assertEquals(in.get(name), back, name);
      }
      assertEquals(255, st.load("u8").getInt(2));
      assertEquals(Long.MIN_VALUE, st.load("i64").getLong(0));

      // Half types: bytes on disk are the original bit patterns; load() widens to FLOAT.
      ByteBuffer f16 = st.raw("f16");
      assertEquals((short) 0x7BFF, f16.getShort(4));
      assertEquals((short) 0xFC00, f16.getShort(8));
      float[] widened = st.load("f16").data().asFloat();
      assertEquals(65504f, widened[2]);
      assertEquals(0x1p-24f, widened[3]);
      assertEquals(Float.NEGATIVE_INFINITY, widened[4]);
      assertTrue(Float.isNaN(widened[5]));
      assertEquals((short) 0x3F80, st.raw("bf16").getShort(0));
      assertArrayEquals(new float[] {1f, -3f, Float.POSITIVE_INFINITY, 0x1p-133f}, st.load("bf16").data().asFloat());
    }
  }

  @Test
  void writesLogicalValuesOfViewsAndFortranOrderArrays() throws IOException {
    INDArray base = Nd4j.arange(12).castTo(DataType.FLOAT).reshape(3, 4);
    INDArray transposed = base.transpose();
    INDArray columns = base.get(NDArrayIndex.all(), NDArrayIndex.interval(1, 3));
    INDArray fortran = base.dup('f');
    Map<String, INDArray> in = new LinkedHashMap<>();
    in.put("transposed", transposed);
    in.put("columns", columns);
    in.put("fortran", fortran);
    Path file = dir.resolve("views.safetensors");
    SafeTensors.write(file, in, null);
    try (SafeTensors st = SafeTensors.open(file)) {
      assertEquals(Map.of(), st.metadata());
      assertArrayEquals(new float[] {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, st.load("transposed").data().asFloat());
      assertArrayEquals(new float[] {1, 2, 5, 6, 9, 10}, st.load("columns").data().asFloat());
      assertArrayEquals(new long[] {3, 2}, st.load("columns").shape());
      assertArrayEquals(base.data().asFloat(), st.load("fortran").data().asFloat());
    }
  }

  @Test
  void roundTripsScalarsAndEmptyTensors() throws IOException {
    Map<String, INDArray> in = new LinkedHashMap<>();
    in.put("scalar", Nd4j.scalar(2.5f));
    in.put("empty", Nd4j.create(DataType.FLOAT, 0, 3));
    in.put("after", Nd4j.createFromArray(new float[] {9f}));
    Path file = dir.resolve("edge.safetensors");
    SafeTensors.write(file, in, Map.of());
    try (SafeTensors st = SafeTensors.open(file)) {
      assertEquals(0, st.load("scalar").rank());
      assertEquals(2.5f, st.load("scalar").getFloat(0));
      assertArrayEquals(new long[] {0, 3}, st.load("empty").shape());
      assertEquals(new TensorInfo("empty", DType.F32, new long[] {0, 3}, 4, 4), st.info("empty"));
      assertEquals(9f, st.load("after").getFloat(0));
    }
  }

  @Test
  void headerIsPaddedToEightBytesAndKeepsInsertionOrder() throws IOException {
    Map<String, INDArray> in = new LinkedHashMap<>();
    in.put("zeta", Nd4j.createFromArray(new float[] {1f, 2f, 3f}));
    in.put("alpha", Nd4j.createFromArray(new double[] {4.0}));
    Path file = dir.resolve("order.safetensors");
    SafeTensors.write(file, in, Map.of("format", "pt"));
    byte[] bytes = Files.readAllBytes(file);
    long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    assertEquals(0, n % 8);
    assertEquals(8 + n + 12 + 8, bytes.length);
    String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
    assertTrue(header.startsWith("{\"__metadata__\":{\"format\":\"pt\"},\"zeta\":"), header);
    JsonNode json = new ObjectMapper().readTree(header);
    assertEquals("[0,12]", json.get("zeta").get("data_offsets").toString());
    assertEquals("[12,20]", json.get("alpha").get("data_offsets").toString());
    assertEquals("F64", json.get("alpha").get("dtype").textValue());
    assertEquals(1f, ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getFloat((int) (8 + n)));
  }

  @Test
  void writesRawTensorsAndChecksTheirLength() throws IOException {
    ByteBuffer bits = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 0x3C00).putShort((short) 0xC000).flip();
    Path file = dir.resolve("raw.safetensors");
    SafeTensors.write(file, List.of(new RawTensor("h", DType.F16, new long[] {2}, bits)), null);
    assertEquals(0, bits.position(), "writing must not move the caller's buffer");
    try (SafeTensors st = SafeTensors.open(file)) {
      assertArrayEquals(new float[] {1f, -2f}, st.load("h").data().asFloat());
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SafeTensors.write(file,
        List.of(new RawTensor("wrong", DType.F32, new long[] {2}, ByteBuffer.allocate(4))), null));
    assertTrue(e.getMessage().contains("'wrong'") && e.getMessage().contains("needs 8 bytes"), e.getMessage());
  }

  @Test
  void failedWriteLeavesTheOldFileAndNoTemporaryFile() throws IOException {
    Path file = dir.resolve("keep.safetensors");
    SafeTensors.write(file, Map.of("a", Nd4j.createFromArray(new float[] {1f})), null);
    byte[] before = Files.readAllBytes(file);
    IOException e = assertThrows(IOException.class, () -> AtomicFiles.write(file, channel -> {
      channel.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
      throw new IOException("disk full (simulated)");
    }));
    assertEquals("disk full (simulated)", e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> SafeTensors.write(file,
        Map.of("s", Nd4j.create(DataType.SHORT, 2)), null));
    assertArrayEquals(before, Files.readAllBytes(file));
    try (var listing = Files.list(dir)) {
      assertEquals(List.of(file), listing.toList());
    }
  }

  @Test
  void unknownNameListsTheClosestNames() throws IOException {
    Path file = dir.resolve("names.safetensors");
    Map<String, INDArray> in = new LinkedHashMap<>();
    in.put("encoder.layer.0.attention.self.query.weight", Nd4j.zeros(DataType.FLOAT, 1));
    in.put("encoder.layer.0.attention.self.key.weight", Nd4j.zeros(DataType.FLOAT, 1));
    in.put("pooler.dense.bias", Nd4j.zeros(DataType.FLOAT, 1));
    SafeTensors.write(file, in, null);
    try (SafeTensors st = SafeTensors.open(file)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> st.info("encoder.layer.0.attention.self.querry.weight"));
      assertTrue(e.getMessage().startsWith(file + ": no tensor named"), e.getMessage());
      assertTrue(e.getMessage().contains("closest: 'encoder.layer.0.attention.self.query.weight'"), e.getMessage());
    }
  }

  // ---- bad input: each must name the file and the problem ----

  @Test
  void rejectsATruncatedFile() throws IOException {
    Path file = dir.resolve("cut.safetensors");
    SafeTensors.write(file, Map.of("w", Nd4j.rand(DataType.FLOAT, 4, 4)), null);
    byte[] whole = Files.readAllBytes(file);
    Files.write(file, java.util.Arrays.copyOf(whole, whole.length - 10));
    assertBad(file, "run past the end of the", "truncated file?");
    Files.write(file, java.util.Arrays.copyOf(whole, 5));
    assertBad(file, "too short for the 8-byte header length");
    Files.write(file, java.util.Arrays.copyOf(whole, 20));
    assertBad(file, "runs past the end of the 20-byte file");
  }

  @Test
  void rejectsOffsetsPastTheEnd() throws IOException {
    assertBad(craft("past.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 8),
        "tensor 'a': data_offsets [8, 16] run past the end of the 8-byte data region");
  }

  @Test
  void rejectsAnAbsurdHeaderLength() throws IOException {
    Path file = dir.resolve("absurd.safetensors");
    Files.write(file, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).array());
    assertBad(file, "header length 1099511627776 is absurd");
    Files.write(file, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L).array());
    assertBad(file, "header length 18446744073709551615 is absurd");
  }

  @Test
  void rejectsOverlapsHolesAndTrailingBytes() throws IOException {
    assertBad(craft("overlap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
        "tensor 'b' [4, 12] overlaps tensor 'a' [0, 8]");
    assertBad(craft("hole.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12),
        "hole in the data region: bytes [4, 8)");
    assertBad(craft("tail.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12),
        "8 unclaimed trailing bytes");
  }

  @Test
  void rejectsAShapeThatDisagreesWithTheByteLength() throws IOException {
    assertBad(craft("shape.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20),
        "tensor 'a': F32 shape [2,3] needs 6 × 4 = 24 bytes, but data_offsets [0, 20] hold 20");
  }

  @Test
  void rejectsBadHeaderContent() throws IOException {
    assertBad(craft("json.safetensors", "{\"a\": {\"dtype\": \"F32\",", 0), "header is not valid JSON");
    assertBad(craft("array.safetensors", "[1, 2]", 0), "header must be a JSON object, found array");
    assertBad(craft("dup.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
        + "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4), "Duplicate field 'a'");
    assertBad(craft("dtype.safetensors", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1),
        "tensor 'a': unknown dtype \"F8_E4M3\"");
    assertBad(craft("neg.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,8]}}", 8),
        "tensor 'a': negative dimension -1");
    assertBad(craft("order.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4),
        "tensor 'a': data_offsets begin 4 > end 0");
    assertBad(craft("meta.safetensors", "{\"__metadata__\":{\"n\":1}}", 0),
        "\"__metadata__\" value for \"n\" must be a string");
    assertBad(craft("field.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4),
        "tensor 'a': \"data_offsets\" must be an array of 2 integers, found null");
  }

  private void assertBad(Path file, String... fragments) {
    SafeTensorsFormatException e = assertThrows(SafeTensorsFormatException.class, () -> SafeTensors.open(file));
    assertTrue(e.getMessage().startsWith(file.toString() + ": "), e.getMessage());
    assertEquals(file, e.file());
    for (String fragment : fragments) {
      assertTrue(e.getMessage().contains(fragment), () -> "'" + fragment + "' not in: " + e.getMessage());
    }
  }

  private Path craft(String name, String header, int dataBytes) throws IOException {
    return craft(name, header.getBytes(StandardCharsets.UTF_8), new byte[dataBytes]);
  }

  private Path craft(String name, byte[] header, byte[] data) throws IOException {
    ByteBuffer out = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    out.putLong(header.length).put(header).put(data);
    Path file = dir.resolve(name);
    Files.write(file, out.array());
    return file;
  }

  private static INDArray halfFromBits(DataType type, int... bits) {
    INDArray out = Nd4j.create(type, bits.length);
    ByteBuffer storage = out.data().asNio().order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < bits.length; i++) {
      storage.putShort(2 * i, (short) bits[i]);
    }
    return out;
  }
}
