package dev.peftspark.core.io;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Lays out and writes a safetensors file; the data follows the header in the order given. */
final class SafeTensorsWriter {
  private SafeTensorsWriter() {}

  /** One tensor to write: its header fields and how to stream its {@code byteLength} bytes. */
  record Entry(String name, DType dtype, long[] shape, long byteLength, AtomicFiles.Body data) {

    static Entry of(String name, INDArray array) {
      Objects.requireNonNull(array, () -> "tensor '" + name + "' is null");
      DType dtype = DType.fromNd4j(array.dataType());
      long[] shape = array.shape();
      long bytes = array.length() * dtype.bytes();
      if (array.isEmpty() || bytes == 0) {
        return new Entry(name, dtype, shape, 0, channel -> { });
      }
      INDArray values = NativeBytes.contiguous(array);
      return new Entry(name, dtype, shape, bytes, channel -> {
        for (long offset = 0; offset < bytes; offset += NativeBytes.CHUNK) {
          int length = (int) Math.min(NativeBytes.CHUNK, bytes - offset);
          AtomicFiles.writeFully(channel, NativeBytes.window(values, offset, length));
        }
      });
    }

    static Entry of(RawTensor t) {
      long expected;
      try {
        expected = Math.multiplyExact(TensorInfo.elementCount(t.shape()), t.dtype().bytes());
      } catch (ArithmeticException e) {
        throw new IllegalArgumentException("tensor '" + t.name() + "': shape overflows a 64-bit size");
      }
      if (Arrays.stream(t.shape()).anyMatch(d -> d < 0)) {
        throw new IllegalArgumentException("tensor '" + t.name() + "': negative dimension in shape "
            + Arrays.toString(t.shape()));
      }
      if (t.data().remaining() != expected) {
        throw new IllegalArgumentException("tensor '" + t.name() + "': " + t.dtype().code()
            + Arrays.toString(t.shape()) + " needs " + expected + " bytes but the buffer holds "
            + t.data().remaining());
      }
      return new Entry(t.name(), t.dtype(), t.shape(), expected,
          channel -> AtomicFiles.writeFully(channel, t.data().duplicate()));
    }
  }

  static void write(Path file, List<Entry> entries, Map<String, String> metadata) throws IOException {
    byte[] header = header(entries, metadata);
    long total = 8L + header.length + entries.stream().mapToLong(Entry::byteLength).sum();
    AtomicFiles.write(file, channel -> {
      ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
      AtomicFiles.writeFully(channel, prefix);
      AtomicFiles.writeFully(channel, ByteBuffer.wrap(header));
      for (Entry e : entries) {
        e.data().writeTo(channel);
      }
      checkSize(file, channel, total);
    });
  }

  /** JSON header, space-padded to a multiple of 8 bytes so the data region starts aligned. */
  static byte[] header(List<Entry> entries, Map<String, String> metadata) throws IOException {
    ObjectNode root = SafeTensorsHeader.JSON.createObjectNode();
    if (metadata != null && !metadata.isEmpty()) {
      ObjectNode meta = root.putObject(SafeTensorsHeader.METADATA_KEY);
      metadata.forEach((k, v) -> meta.put(Objects.requireNonNull(k, "metadata key"),
          Objects.requireNonNull(v, () -> "metadata value for '" + k + "'")));
    }
    Set<String> seen = new HashSet<>();
    long offset = 0;
    for (Entry e : entries) {
      checkName(e.name(), seen);
      ObjectNode node = root.putObject(e.name());
      node.put("dtype", e.dtype().code());
      ArrayNode shape = node.putArray("shape");
      for (long d : e.shape()) {
        shape.add(d);
      }
      node.putArray("data_offsets").add(offset).add(offset + e.byteLength());
      offset += e.byteLength();
    }
    byte[] json = SafeTensorsHeader.JSON.writeValueAsBytes(root);
    int padded = (json.length + 7) / 8 * 8;
    byte[] out = Arrays.copyOf(json, padded);
    Arrays.fill(out, json.length, padded, (byte) ' ');
    return out;
  }

  private static void checkName(String name, Set<String> seen) {
    if (name == null || name.isEmpty()) {
      throw new IllegalArgumentException("tensor names must be non-empty");
    }
    if (name.equals(SafeTensorsHeader.METADATA_KEY)) {
      throw new IllegalArgumentException("'" + name + "' is reserved for metadata, not a tensor name");
    }
    if (!seen.add(name)) {
      throw new IllegalArgumentException("duplicate tensor name '" + name + "'");
    }
  }

  private static void checkSize(Path file, FileChannel channel, long expected) throws IOException {
    if (channel.position() != expected) {
      throw new IOException(file + ": wrote " + channel.position() + " bytes, expected " + expected);
    }
  }
}
