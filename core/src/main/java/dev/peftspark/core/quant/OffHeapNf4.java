package dev.peftspark.core.quant;

import org.bytedeco.javacpp.BytePointer;

import java.nio.ByteBuffer;

/**
 * An {@link Nf4Tensor} whose codes live in native memory (JavaCPP, counted by {@code javacpp.maxbytes}) instead of
 * on the JVM heap, so that a 4-bit model does not set the heap's size: the heap can stay small and the garbage
 * collector never walks the codes. Dequantizes bit for bit as {@link Nf4#dequantize} does on the heap form.
 */
public final class OffHeapNf4 {
  /** Values decoded per call of {@link #decodeChunk} (a multiple of both block sizes' value counts). */
  public static final int CHUNK = 1 << 16;

  private final long size;
  private final BytePointer packedMemory, codesMemory;   // owners of the native memory (codesMemory null: plain absmax)
  private final ByteBuffer packed, absmaxCodes;          // views of that memory, read with absolute gets only
  private final float[] absmaxScales;
  private final float absmaxOffset;

  private OffHeapNf4(Nf4Tensor t) {
    this.size = t.size();
    this.packedMemory = copy(t.packed());
    this.packed = packedMemory.asByteBuffer();
    this.codesMemory = t.absmaxCodes() == null ? null : copy(t.absmaxCodes());
    this.absmaxCodes = codesMemory == null ? null : codesMemory.asByteBuffer();
    this.absmaxScales = t.absmaxScales().clone();
    this.absmaxOffset = t.absmaxOffset();
  }

  /** Copies {@code t}'s codes to native memory (the heap arrays can then be dropped). */
  public static OffHeapNf4 of(Nf4Tensor t) { return new OffHeapNf4(t); }

  private static BytePointer copy(byte[] bytes) {
    BytePointer p = new BytePointer(bytes.length);
    p.put(bytes, 0, bytes.length);
    return p;
  }

  public long size() { return size; }

  public int blocks() { return (int) ((size + Nf4.BLOCK - 1) / Nf4.BLOCK); }

  public boolean doubleQuantized() { return absmaxCodes != null; }

  /** The absmax of block {@code b}, the same float arithmetic as {@link Nf4Tensor#absmax}. */
  public float absmax(int b) {
    if (absmaxCodes == null) return absmaxScales[b];
    return DynamicMap8.value(absmaxCodes.get(b)) * absmaxScales[b / Nf4.ABSMAX_BLOCK] + absmaxOffset;
  }

  /** Native bytes of the codes plus the heap floats (scales, offset): {@link Nf4Tensor#storageBytes} of the same tensor. */
  public long storageBytes() {
    return packed.capacity() + (absmaxCodes == null ? 0 : absmaxCodes.capacity() + 4L) + 4L * absmaxScales.length;
  }

  public double bitsPerParameter() { return storageBytes() * 8.0 / size; }

  /**
   * Decodes values {@code from .. from + n} into {@code out[0 .. n)}, {@code n = min(out.length, size - from)};
   * {@code from} must start a block. Returns {@code n}.
   */
  public int decodeChunk(long from, float[] out) { return decodeChunk(from, out, out.length); }

  /** As {@link #decodeChunk(long, float[])}, at most {@code max} values. */
  public int decodeChunk(long from, float[] out, int max) {
    if (from % Nf4.BLOCK != 0 || from < 0 || from >= size)
      throw new IllegalArgumentException("chunk start " + from + " is not a block start inside 0.." + size);
    int n = (int) Math.min(Math.min(out.length, max), size - from);
    decode(from, n, out, 0, new byte[(n + 1) / 2]);
    return n;
  }

  /** The levels of a byte's high (first) and low (second) nibble, by byte value: one lookup per value, none per nibble. */
  private static final float[] HIGH = new float[256], LOW = new float[256];

  static {
    for (int b = 0; b < 256; b++) {
      HIGH[b] = Nf4.LEVELS[b >> 4];
      LOW[b] = Nf4.LEVELS[b & 0xF];
    }
  }

  /**
   * Decodes values {@code from .. from + n} into {@code out[off .. off + n)}: {@code from} starts a block and
   * {@code from + n <= size}; {@code bytes} is the caller's staging for the codes ({@code >= (n + 1) / 2} long), so
   * that threads decoding disjoint ranges share nothing but the read-only codes. Each block's absmax is decoded
   * once; the product per value is the same float product as {@link Nf4#dequantize}.
   */
  public void decode(long from, int n, float[] out, int off, byte[] bytes) {
    if (from % Nf4.BLOCK != 0 || from < 0 || n < 0 || from + n > size)
      throw new IllegalArgumentException("values " + from + ".." + (from + n) + " are not whole blocks from a block start inside 0.." + size);
    int byteFrom = (int) (from >> 1), byteCount = (n + 1) / 2;
    if (bytes.length < byteCount) throw new IllegalArgumentException("staging of " + bytes.length + " bytes for " + byteCount + " codes");
    packed.get(byteFrom, bytes, 0, byteCount);
    int b = (int) (from / Nf4.BLOCK);
    for (int i = 0; i < n; b++) {
      float m = absmax(b);
      int end = Math.min(n, i + Nf4.BLOCK), pairsEnd = i + ((end - i) & ~1);
      for (int k = i >> 1; i < pairsEnd; i += 2, k++) {
        int code = bytes[k] & 0xFF;
        out[off + i] = HIGH[code] * m;
        out[off + i + 1] = LOW[code] * m;
      }
      if (i < end) {                      // an odd tail (the tensor's last value): the high nibble only
        out[off + i] = HIGH[bytes[i >> 1] & 0xFF] * m;
        i++;
      }
    }
  }

  /** Every value into {@code out[0 .. size)} (tests, merges). */
  public void dequantize(float[] out) {
    float[] chunk = new float[CHUNK];
    for (long from = 0; from < size; ) {
      int n = decodeChunk(from, chunk);
      System.arraycopy(chunk, 0, out, (int) from, n);
      from += n;
    }
  }

  /** Frees the native codes now rather than when collected; the tensor is unusable afterwards. */
  public void close() {
    packedMemory.close();
    if (codesMemory != null) codesMemory.close();
  }
}
