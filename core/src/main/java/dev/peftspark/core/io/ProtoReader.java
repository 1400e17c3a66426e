package dev.peftspark.core.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Reads protobuf wire format from a buffer without copying: varints, fixed-width values and
 * length-delimited fields (returned as slices). Only what ONNX needs; groups are refused.
 */
final class ProtoReader {
  static final int VARINT = 0;
  static final int FIXED64 = 1;
  static final int LENGTH_DELIMITED = 2;
  static final int FIXED32 = 5;

  private final ByteBuffer buf;
  private final long base; // absolute offset of buf's first byte, for messages
  private final String source;
  private final String message;

  ProtoReader(ByteBuffer buf, long base, String source, String message) {
    this.buf = buf.slice().order(ByteOrder.LITTLE_ENDIAN);
    this.base = base;
    this.source = source;
    this.message = message;
  }

  boolean hasMore() { return buf.hasRemaining(); }

  /** Absolute offset of the next byte in the whole input. */
  long offset() { return base + buf.position(); }

  /** The next field's tag: field number {@code tag >>> 3}, wire type {@code tag & 7}. */
  int readTag() throws OnnxFormatException {
    long tag = readVarint();
    if (tag >>> 3 == 0 || tag > Integer.MAX_VALUE) {
      throw bad("invalid field tag " + tag);
    }
    return (int) tag;
  }

  /** The varint value of field {@code tag}. */
  long readVarint(int tag) throws OnnxFormatException {
    expect(tag, VARINT);
    return readVarint();
  }

  long readVarint() throws OnnxFormatException {
    long result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!buf.hasRemaining()) {
        throw bad("truncated varint");
      }
      byte b = buf.get();
      result |= (long) (b & 0x7F) << shift;
      if (b >= 0) {
        return result;
      }
    }
    throw bad("varint longer than 10 bytes");
  }

  int readFixed32() throws OnnxFormatException {
    need(4, "fixed32");
    return buf.getInt();
  }

  long readFixed64() throws OnnxFormatException {
    need(8, "fixed64");
    return buf.getLong();
  }

  /** A length-delimited field as a little-endian slice of the input (no copy). */
  ByteBuffer readBytes() throws OnnxFormatException {
    long length = readVarint();
    if (length < 0 || length > buf.remaining()) {
      throw bad("length-delimited field of " + length + " bytes runs past the end (" + buf.remaining()
          + " bytes left; truncated file?)");
    }
    ByteBuffer slice = buf.slice(buf.position(), (int) length).order(ByteOrder.LITTLE_ENDIAN);
    buf.position(buf.position() + (int) length);
    return slice;
  }

  /** The nested message of field {@code tag}; {@code name} labels it in error messages. */
  ProtoReader readMessage(int tag, String name) throws OnnxFormatException {
    expect(tag, LENGTH_DELIMITED);
    ByteBuffer bytes = readBytes();
    return new ProtoReader(bytes, offset() - bytes.remaining(), source, name);
  }

  /** The string value of field {@code tag}. */
  String readString(int tag) throws OnnxFormatException {
    expect(tag, LENGTH_DELIMITED);
    ByteBuffer bytes = readBytes();
    byte[] out = new byte[bytes.remaining()];
    bytes.get(out);
    return new String(out, StandardCharsets.UTF_8);
  }

  void skip(int wireType) throws OnnxFormatException {
    switch (wireType) {
      case VARINT -> readVarint();
      case FIXED64 -> readFixed64();
      case LENGTH_DELIMITED -> readBytes();
      case FIXED32 -> readFixed32();
      default -> throw bad("unsupported wire type " + wireType);
    }
  }

  /** Fails unless the field just tagged has {@code expected} wire type. */
  void expect(int tag, int expected) throws OnnxFormatException {
    if ((tag & 7) != expected) {
      throw bad("field " + (tag >>> 3) + " has wire type " + (tag & 7) + ", expected " + expected);
    }
  }

  OnnxFormatException bad(String problem) {
    return new OnnxFormatException(source, message + " at byte " + offset() + ": " + problem);
  }

  private void need(int bytes, String what) throws OnnxFormatException {
    if (buf.remaining() < bytes) {
      throw bad("truncated " + what);
    }
  }
}
