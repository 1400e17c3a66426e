package dev.peftspark.core.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Reads and checks a safetensors header: every rule of the format, one clear message per break. */
record SafeTensorsHeader(Map<String, String> metadata, List<TensorInfo> tensors, long dataStart) {

  /** Headers above this are refused before allocating (the Rust reference uses the same 100 MB cap). */
  static final long MAX_HEADER_BYTES = 100_000_000L;
  static final String METADATA_KEY = "__metadata__";

  static final ObjectMapper JSON = new ObjectMapper()
      .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  static SafeTensorsHeader read(Path file, FileChannel channel) throws IOException {
    long fileSize = channel.size();
    if (fileSize < 8) {
      throw bad(file, "file is " + fileSize + " bytes, too short for the 8-byte header length (truncated?)");
    }
    ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    readFully(channel, lengthBytes, 0);
    long headerLength = lengthBytes.getLong(0);
    if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
      throw bad(file, "header length " + Long.toUnsignedString(headerLength) + " is absurd (limit "
          + MAX_HEADER_BYTES + " bytes); not a safetensors file?");
    }
    if (headerLength > fileSize - 8) {
      throw bad(file, "header length " + headerLength + " runs past the end of the " + fileSize
          + "-byte file (truncated?)");
    }
    ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
    readFully(channel, headerBytes, 8);
    JsonNode root = parseJson(file, headerBytes.array());
    long dataStart = 8 + headerLength;
    Map<String, String> metadata = new LinkedHashMap<>();
    List<TensorInfo> tensors = new ArrayList<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> field = it.next();
      if (field.getKey().equals(METADATA_KEY)) {
        readMetadata(file, field.getValue(), metadata);
      } else {
        tensors.add(readTensor(file, field.getKey(), field.getValue()));
      }
    }
    checkLayout(file, tensors, fileSize - dataStart);
    return new SafeTensorsHeader(metadata, List.copyOf(tensors), dataStart);
  }

  private static JsonNode parseJson(Path file, byte[] bytes) throws SafeTensorsFormatException {
    String text;
    try {
      text = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes)).toString();
    } catch (CharacterCodingException e) {
      throw bad(file, "header is not valid UTF-8");
    }
    JsonNode root;
    try {
      root = JSON.readTree(text);
    } catch (JsonProcessingException e) {
      throw bad(file, "header is not valid JSON: " + e.getOriginalMessage()
          + " (at header character " + e.getLocation().getCharOffset() + ")");
    }
    if (root == null || !root.isObject()) {
      throw bad(file, "header must be a JSON object, found "
          + (root == null ? "nothing" : root.getNodeType().toString().toLowerCase()));
    }
    return root;
  }

  private static void readMetadata(Path file, JsonNode node, Map<String, String> out)
      throws SafeTensorsFormatException {
    if (!node.isObject()) {
      throw bad(file, "\"" + METADATA_KEY + "\" must be an object of strings");
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (!e.getValue().isTextual()) {
        throw bad(file, "\"" + METADATA_KEY + "\" value for \"" + e.getKey() + "\" must be a string, found "
            + e.getValue());
      }
      out.put(e.getKey(), e.getValue().textValue());
    }
  }

  private static TensorInfo readTensor(Path file, String name, JsonNode node)
      throws SafeTensorsFormatException {
    String where = "tensor '" + name + "'";
    if (!node.isObject()) {
      throw bad(file, where + ": entry must be an object with dtype, shape and data_offsets");
    }
    JsonNode dtypeNode = node.get("dtype");
    if (dtypeNode == null || !dtypeNode.isTextual()) {
      throw bad(file, where + ": missing or non-string \"dtype\"");
    }
    DType dtype = DType.fromCode(dtypeNode.textValue()).orElseThrow(() -> bad(file, where
        + ": unknown dtype \"" + dtypeNode.textValue() + "\" (supported: F32, F16, BF16, F64, I64, I32, I8, U8, BOOL)"));
    long[] shape = longArray(file, where, node.get("shape"), "shape", -1);
    for (long d : shape) {
      if (d < 0) {
        throw bad(file, where + ": negative dimension " + d + " in shape " + node.get("shape"));
      }
    }
    long[] offsets = longArray(file, where, node.get("data_offsets"), "data_offsets", 2);
    long begin = offsets[0];
    long end = offsets[1];
    if (begin < 0 || end < 0) {
      throw bad(file, where + ": negative data_offsets " + node.get("data_offsets"));
    }
    if (begin > end) {
      throw bad(file, where + ": data_offsets begin " + begin + " > end " + end);
    }
    long elements;
    long expectedBytes;
    try {
      elements = TensorInfo.elementCount(shape);
      expectedBytes = Math.multiplyExact(elements, dtype.bytes());
    } catch (ArithmeticException e) {
      throw bad(file, where + ": shape " + node.get("shape") + " overflows a 64-bit size");
    }
    if (expectedBytes != end - begin) {
      throw bad(file, where + ": " + dtype.code() + " shape " + node.get("shape") + " needs " + elements
          + " × " + dtype.bytes() + " = " + expectedBytes + " bytes, but data_offsets [" + begin + ", "
          + end + "] hold " + (end - begin));
    }
    return new TensorInfo(name, dtype, shape, begin, end);
  }

  private static long[] longArray(Path file, String where, JsonNode node, String field, int exactLength)
      throws SafeTensorsFormatException {
    if (node == null || !node.isArray() || (exactLength >= 0 && node.size() != exactLength)) {
      String expected = exactLength >= 0 ? "an array of " + exactLength + " integers" : "an array of integers";
      throw bad(file, where + ": \"" + field + "\" must be " + expected + ", found " + node);
    }
    long[] out = new long[node.size()];
    for (int i = 0; i < out.length; i++) {
      JsonNode v = node.get(i);
      if (!v.isIntegralNumber() || !v.canConvertToLong()) {
        throw bad(file, where + ": \"" + field + "\" must hold integers, found " + node);
      }
      out[i] = v.longValue();
    }
    return out;
  }

  /** The data region must be covered exactly: no gaps, no overlaps, nothing past its end. */
  private static void checkLayout(Path file, List<TensorInfo> tensors, long dataSize)
      throws SafeTensorsFormatException {
    for (TensorInfo t : tensors) {
      if (t.end() > dataSize) {
        throw bad(file, "tensor '" + t.name() + "': data_offsets [" + t.begin() + ", " + t.end()
            + "] run past the end of the " + dataSize + "-byte data region (truncated file?)");
      }
    }
    tensors.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
    long covered = 0;
    TensorInfo previous = null;
    for (TensorInfo t : tensors) {
      if (t.begin() < covered) {
        throw bad(file, "tensor '" + t.name() + "' [" + t.begin() + ", " + t.end() + "] overlaps tensor '"
            + previous.name() + "' [" + previous.begin() + ", " + previous.end() + "]");
      }
      if (t.begin() > covered) {
        throw bad(file, "hole in the data region: bytes [" + covered + ", " + t.begin()
            + ") belong to no tensor (before tensor '" + t.name() + "')");
      }
      covered = t.end();
      previous = t;
    }
    if (covered != dataSize) {
      throw bad(file, "data region is " + dataSize + " bytes but the tensors cover only " + covered
          + " (" + (dataSize - covered) + " unclaimed trailing bytes)");
    }
  }

  private static void readFully(FileChannel channel, ByteBuffer into, long position) throws IOException {
    while (into.hasRemaining()) {
      int n = channel.read(into, position + into.position());
      if (n < 0) {
        throw new IOException("unexpected end of file");
      }
    }
  }

  private static SafeTensorsFormatException bad(Path file, String problem) {
    return new SafeTensorsFormatException(file, problem);
  }
}
