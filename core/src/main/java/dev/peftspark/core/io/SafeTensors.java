package dev.peftspark.core.io;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A safetensors file opened for reading (memory-mapped, one mapping per tensor, so files above 2 GiB
 * work), plus the static {@code write} methods. Format: u64 little-endian header length N, N bytes of
 * UTF-8 JSON, then the data region that the tensors' {@code data_offsets} cover exactly.
 *
 * <p>Buffers returned by {@link #raw} stay valid after {@link #close}.
 */
public final class SafeTensors implements Closeable {
  private final Path file;
  private final FileChannel channel;
  private final SafeTensorsHeader header;
  private final Map<String, TensorInfo> byName = new LinkedHashMap<>();

  private SafeTensors(Path file, FileChannel channel, SafeTensorsHeader header) {
    this.file = file;
    this.channel = channel;
    this.header = header;
    header.tensors().forEach(t -> byName.put(t.name(), t));
  }

  /** Opens and fully validates {@code file}; throws {@link SafeTensorsFormatException} if it breaks the format. */
  public static SafeTensors open(Path file) throws IOException {
    FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
    try {
      return new SafeTensors(file, channel, SafeTensorsHeader.read(file, channel));
    } catch (IOException | RuntimeException e) {
      channel.close();
      throw e;
    }
  }

  /** Reads every tensor of {@code file} (see {@link #load}), in file order. */
  public static Map<String, INDArray> loadAll(Path file) throws IOException {
    try (SafeTensors st = open(file)) {
      Map<String, INDArray> out = new LinkedHashMap<>();
      for (TensorInfo t : st.tensors()) {
        out.put(t.name(), st.load(t.name()));
      }
      return out;
    }
  }

  public Path file() { return file; }

  /** All tensors, in the order their bytes appear in the file. */
  public List<TensorInfo> tensors() { return header.tensors(); }

  /** The {@code __metadata__} map (empty if the file has none). */
  public Map<String, String> metadata() { return java.util.Collections.unmodifiableMap(header.metadata()); }

  public boolean contains(String name) { return byName.containsKey(name); }

  /** The entry for {@code name}; an unknown name fails with the closest names the file does hold. */
  public TensorInfo info(String name) {
    TensorInfo t = byName.get(name);
    if (t == null) {
      throw new IllegalArgumentException(file + ": no tensor named '" + name + "' among "
          + byName.size() + " tensors; closest: " + closestNames(name));
    }
    return t;
  }

  /** The tensor's bytes as a read-only little-endian view of the mapped file (no copy; at most 2 GiB). */
  public ByteBuffer raw(String name) throws IOException {
    TensorInfo t = info(name);
    if (t.byteLength() > Integer.MAX_VALUE) {
      throw new IOException(file + ": tensor '" + name + "' is " + t.byteLength()
          + " bytes, above the 2 GiB a ByteBuffer can view; use load()");
    }
    return map(t.begin(), (int) t.byteLength());
  }

  /**
   * The tensor as a new c-order ND4J array of type {@link DType#loadedAs()}: F16 and BF16 are widened
   * to FLOAT exactly, every other dtype keeps its values and width. The bytes are read (not mapped) a
   * bounded window at a time, so reading a large file tensor by tensor leaves none of its pages
   * counted in this process's resident memory.
   */
  public INDArray load(String name) throws IOException {
    TensorInfo t = info(name);
    INDArray out = Nd4j.create(t.dtype().loadedAs(), t.shape());
    long n = t.numElements();
    if (n == 0) {
      return out;
    }
    if (t.dtype() == DType.F16 || t.dtype() == DType.BF16) {
      widenHalves(t, out, n);
    } else {
      for (long offset = 0; offset < t.byteLength(); offset += NativeBytes.CHUNK) {
        int length = (int) Math.min(NativeBytes.CHUNK, t.byteLength() - offset);
        readFully(t.begin() + offset, NativeBytes.window(out, offset, length));
      }
    }
    return out;
  }

  /** {@link #load} followed by a cast to {@code type} when it differs. */
  public INDArray loadAs(String name, DataType type) throws IOException {
    INDArray loaded = load(name);
    return loaded.dataType() == type ? loaded : loaded.castTo(type);
  }

  @Override
  public void close() throws IOException { channel.close(); }

  /**
   * Writes ND4J arrays, in the map's iteration order, atomically. FLOAT→F32, DOUBLE→F64, HALF→F16,
   * BFLOAT16→BF16, LONG→I64, INT→I32, BYTE→I8, UBYTE→U8, BOOL→BOOL; views and f-order arrays are
   * written as their logical c-order values. {@code metadata} may be null or empty (then no
   * {@code __metadata__} entry is written).
   */
  public static void write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata)
      throws IOException {
    SafeTensorsWriter.write(file, tensors.entrySet().stream()
        .map(e -> SafeTensorsWriter.Entry.of(e.getKey(), e.getValue()))
        .toList(), metadata);
  }

  /** Writes raw tensors, in list order, atomically; each buffer's remaining bytes must match its shape. */
  public static void write(Path file, List<RawTensor> tensors, Map<String, String> metadata)
      throws IOException {
    SafeTensorsWriter.write(file, tensors.stream().map(SafeTensorsWriter.Entry::of).toList(), metadata);
  }

  private void widenHalves(TensorInfo t, INDArray out, long n) throws IOException {
    boolean bf16 = t.dtype() == DType.BF16;
    ByteBuffer window = ByteBuffer.allocate(HALF_WINDOW * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (long first = 0; first < n; first += HALF_WINDOW) {
      int count = (int) Math.min(HALF_WINDOW, n - first);
      window.clear().limit(count * 2);
      readFully(t.begin() + first * 2, window);
      ShortBuffer src = window.flip().asShortBuffer();
      FloatBuffer dst = NativeBytes.window(out, first * Float.BYTES, count * Float.BYTES).asFloatBuffer();
      for (int i = 0; i < count; i++) {
        short bits = src.get(i);
        dst.put(i, bf16 ? HalfFloats.bf16ToFloat(bits) : HalfFloats.f16ToFloat(bits));
      }
    }
  }

  /** 16-bit values widened per read: 1 Mi (a 2 MiB window). */
  private static final int HALF_WINDOW = 1 << 20;

  /** Fills {@code dst}'s remaining bytes from the data region at {@code dataOffset}. */
  private void readFully(long dataOffset, ByteBuffer dst) throws IOException {
    long position = header.dataStart() + dataOffset;
    while (dst.hasRemaining()) {
      int read = channel.read(dst, position);
      if (read < 0) throw new IOException(file + ": ends at byte " + position + ", inside a tensor's data");
      position += read;
    }
  }

  private ByteBuffer map(long dataOffset, int length) throws IOException {
    return channel.map(FileChannel.MapMode.READ_ONLY, header.dataStart() + dataOffset, length)
        .order(ByteOrder.LITTLE_ENDIAN);
  }

  private String closestNames(String wanted) {
    if (byName.isEmpty()) {
      return "none (the file holds no tensors)";
    }
    return byName.keySet().stream()
        .sorted(Comparator.comparingInt((String k) -> EditDistance.between(k, wanted)).thenComparing(k -> k))
        .limit(5)
        .map(k -> "'" + k + "'")
        .collect(Collectors.joining(", "));
  }
}
