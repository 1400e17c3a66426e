package dev.peftspark.core.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One ONNX initializer (a TensorProto), parsed lazily: its bytes stay slices of the model buffer
 * until {@link #toINDArray()}. Supported element types: FLOAT, DOUBLE, FLOAT16 and BFLOAT16 (both
 * widened to FLOAT), INT64, INT32, INT8, UINT8, BOOL.
 */
public final class OnnxInitializer {
  // TensorProto.DataType codes (onnx.proto).
  public static final int FLOAT = 1;
  public static final int UINT8 = 2;
  public static final int INT8 = 3;
  public static final int INT32 = 6;
  public static final int INT64 = 7;
  public static final int BOOL = 9;
  public static final int FLOAT16 = 10;
  public static final int DOUBLE = 11;
  public static final int BFLOAT16 = 16;

  private static final String[] TYPE_NAMES = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16",
      "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
      "COMPLEX128", "BFLOAT16"};

  private final String source;
  private String name = "";
  private int dataType;
  private final LongList dims = new LongList();
  private ByteBuffer raw;
  private final List<ByteBuffer> fixedWidth = new ArrayList<>(); // float_data / double_data
  private final LongList varints = new LongList();              // int32_data / int64_data
  private boolean external;
  private boolean segmented;

  private OnnxInitializer(String source) {
    this.source = source;
  }

  static OnnxInitializer parse(ProtoReader r, String source) throws OnnxFormatException {
    OnnxInitializer t = new OnnxInitializer(source);
    while (r.hasMore()) {
      int tag = r.readTag();
      int wire = tag & 7;
      switch (tag >>> 3) {
        case 1 -> readVarints(r, tag, t.dims);
        case 2 -> t.dataType = (int) r.readVarint(tag);
        case 3 -> { t.segmented = true; r.skip(wire); }
        case 4 -> t.fixedWidth.add(wire == ProtoReader.FIXED32
            ? ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, r.readFixed32())
            : expectPacked(r, tag));
        case 5, 7, 11 -> readVarints(r, tag, t.varints);
        case 8 -> t.name = r.readString(tag);
        case 9 -> { r.expect(tag, ProtoReader.LENGTH_DELIMITED); t.raw = r.readBytes(); }
        case 10 -> t.fixedWidth.add(wire == ProtoReader.FIXED64
            ? ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, r.readFixed64())
            : expectPacked(r, tag));
        case 14 -> t.external = r.readVarint(tag) == 1;
        default -> r.skip(wire);
      }
    }
    return t;
  }

  public String name() { return name; }

  /** The TensorProto.DataType code, e.g. {@link #FLOAT}. */
  public int dataType() { return dataType; }

  public String dataTypeName() {
    return dataType >= 0 && dataType < TYPE_NAMES.length ? TYPE_NAMES[dataType] : "type " + dataType;
  }

  public long[] dims() { return dims.toArray(); }

  public long numElements() { return TensorInfo.elementCount(dims.toArray()); }

  /** A new c-order array: FLOAT for FLOAT/FLOAT16/BFLOAT16, DOUBLE, LONG, INT, BYTE, UBYTE or BOOL. */
  public INDArray toINDArray() throws OnnxFormatException {
    if (external) {
      throw bad("data is stored in an external file, which this reader does not support");
    }
    if (segmented) {
      throw bad("segmented tensors are not supported");
    }
    DataType target = switch (dataType) {
      case FLOAT, FLOAT16, BFLOAT16 -> DataType.FLOAT;
      case DOUBLE -> DataType.DOUBLE;
      case INT64 -> DataType.LONG;
      case INT32 -> DataType.INT;
      case INT8 -> DataType.BYTE;
      case UINT8 -> DataType.UBYTE;
      case BOOL -> DataType.BOOL;
      default -> throw bad("element type " + dataTypeName() + " is not supported");
    };
    long[] shape = dims.toArray();
    long n = TensorInfo.elementCount(shape);
    INDArray out = Nd4j.create(target, shape);
    if (n == 0) {
      return out;
    }
    if (raw != null) {
      fromRaw(out, n);
    } else if (dataType == FLOAT || dataType == DOUBLE) {
      fromFixedWidth(out, n, dataType == FLOAT ? 4 : 8);
    } else {
      fromVarints(out, n);
    }
    return out;
  }

  @Override
  public String toString() {
    return name + " " + dataTypeName() + Arrays.toString(dims.toArray());
  }

  private void fromRaw(INDArray out, long n) throws OnnxFormatException {
    int width = switch (dataType) {
      case DOUBLE, INT64 -> 8;
      case FLOAT, INT32 -> 4;
      case FLOAT16, BFLOAT16 -> 2;
      default -> 1;
    };
    if (raw.remaining() != n * width) {
      throw bad("raw_data holds " + raw.remaining() + " bytes, but " + dataTypeName()
          + Arrays.toString(dims.toArray()) + " needs " + n * width);
    }
    if (dataType == FLOAT16 || dataType == BFLOAT16) {
      if (n * 4 > Integer.MAX_VALUE) {
        throw bad(n + " half-precision values are too many to widen in one piece");
      }
      ShortBuffer src = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
      FloatBuffer dst = NativeBytes.window(out, 0, (int) (n * 4)).asFloatBuffer();
      for (int i = 0; i < n; i++) {
        short bits = src.get(i);
        dst.put(i, dataType == FLOAT16 ? HalfFloats.f16ToFloat(bits) : HalfFloats.bf16ToFloat(bits));
      }
    } else {
      NativeBytes.window(out, 0, raw.remaining()).put(raw.duplicate());
    }
  }

  private void fromFixedWidth(INDArray out, long n, int width) throws OnnxFormatException {
    long bytes = fixedWidth.stream().mapToLong(ByteBuffer::remaining).sum();
    if (bytes != n * width) {
      throw bad((dataType == FLOAT ? "float_data" : "double_data") + " holds " + bytes / width
          + " values, but dims " + Arrays.toString(dims.toArray()) + " need " + n);
    }
    ByteBuffer dst = NativeBytes.window(out, 0, (int) bytes);
    for (ByteBuffer chunk : fixedWidth) {
      dst.put(chunk.duplicate());
    }
  }

  private void fromVarints(INDArray out, long n) throws OnnxFormatException {
    if (varints.size() != n) {
      throw bad("typed data holds " + varints.size() + " values, but dims " + Arrays.toString(dims.toArray())
          + " need " + n);
    }
    long[] values = varints.toArray();
    ByteBuffer dst = NativeBytes.window(out, 0, (int) (n * out.data().getElementSize()));
    for (long v : values) {
      switch (dataType) {
        case INT64 -> dst.putLong(v);
        case INT32 -> dst.putInt((int) v);
        case FLOAT16 -> dst.putFloat(HalfFloats.f16ToFloat((short) v));
        case BFLOAT16 -> dst.putFloat(HalfFloats.bf16ToFloat((short) v));
        default -> dst.put((byte) v); // INT8, UINT8, BOOL live in int32_data
      }
    }
  }

  private OnnxFormatException bad(String problem) {
    return new OnnxFormatException(source, "initializer '" + name + "': " + problem);
  }

  private static ByteBuffer expectPacked(ProtoReader r, int tag) throws OnnxFormatException {
    r.expect(tag, ProtoReader.LENGTH_DELIMITED);
    return r.readBytes();
  }

  /** A repeated integer field, packed (one length-delimited run) or not (one varint per tag). */
  private static void readVarints(ProtoReader r, int tag, LongList into) throws OnnxFormatException {
    if ((tag & 7) == ProtoReader.VARINT) {
      into.add(r.readVarint());
      return;
    }
    ProtoReader packed = r.readMessage(tag, "packed field " + (tag >>> 3));
    while (packed.hasMore()) {
      into.add(packed.readVarint());
    }
  }

  /** A growable long[], to avoid boxing large repeated fields. */
  private static final class LongList {
    private long[] values = new long[4];
    private int size;

    void add(long v) {
      if (size == values.length) {
        values = Arrays.copyOf(values, size * 2);
      }
      values[size++] = v;
    }

    int size() { return size; }

    long[] toArray() { return Arrays.copyOf(values, size); }
  }
}
