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
    int first = (int) from;
    byte[] codes = new byte[(n + 1) / 2 + 1];
    int byteFrom = first >> 1, byteCount = Math.min(codes.length, packed.capacity() - byteFrom);
    packed.get(byteFrom, codes, 0, byteCount);
    for (int b = first / Nf4.BLOCK, i = 0; i < n; b++) {
      float m = absmax(b);
      int end = Math.min(n, i + Nf4.BLOCK);
      for (; i < end; i++) {
        int v = first + i;
        int byteVal = codes[(v >> 1) - byteFrom];
        int code = (v & 1) == 0 ? (byteVal >> 4) & 0xF : byteVal & 0xF;
        out[i] = Nf4.LEVELS[code] * m;
      }
    }
    return n;
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
