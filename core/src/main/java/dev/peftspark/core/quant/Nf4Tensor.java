package dev.peftspark.core.quant;

/**
 * A tensor in NF4: packed 4-bit codes, and the per-64 block absmaxes either as floats ({@code absmaxCodes} null)
 * or double-quantized (8-bit codes, one float scale per 256 blocks, one float offset).
 *
 * @param size         number of values
 * @param packed       two codes per byte, first value in the high nibble
 * @param absmaxCodes  dynamic-map codes of {@code absmax - offset}, one per block; null without double quantization
 * @param absmaxScales double-quantized: one scale per {@link Nf4#ABSMAX_BLOCK} blocks; otherwise the absmaxes
 * @param absmaxOffset mean of the absmaxes (double quantization), else 0
 */
public record Nf4Tensor(long size, byte[] packed, byte[] absmaxCodes, float[] absmaxScales, float absmaxOffset) {
  public int blocks() { return (int) ((size + Nf4.BLOCK - 1) / Nf4.BLOCK); }

  public boolean doubleQuantized() { return absmaxCodes != null; }

  /** The absmax dequantization uses for block {@code b} (float arithmetic, as bitsandbytes). */
  public float absmax(int b) {
    if (absmaxCodes == null) return absmaxScales[b];
    return DynamicMap8.value(absmaxCodes[b]) * absmaxScales[b / Nf4.ABSMAX_BLOCK] + absmaxOffset;
  }

  /** Bytes held: packed codes, absmax codes, float scales and the offset. */
  public long storageBytes() {
    return packed.length + (absmaxCodes == null ? 0 : absmaxCodes.length + 4L) + 4L * absmaxScales.length;
  }

  /** Storage bits per value (≈ 4.127 with double quantization, 4.5 without). */
  public double bitsPerParameter() { return storageBytes() * 8.0 / size; }
}
