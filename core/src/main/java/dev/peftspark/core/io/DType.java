package dev.peftspark.core.io;

import java.util.Arrays;
import java.util.Optional;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Element types of the safetensors format, with their on-disk names, widths and the ND4J type that
 * {@link SafeTensors#load} produces. F16 and BF16 load as FLOAT: ND4J's half types are poorly supported
 * by its CPU kernels, and every caller in this project computes in FLOAT anyway.
 */
public enum DType {
  F32("F32", 4, DataType.FLOAT),
  F16("F16", 2, DataType.FLOAT),
  BF16("BF16", 2, DataType.FLOAT),
  F64("F64", 8, DataType.DOUBLE),
  I64("I64", 8, DataType.LONG),
  I32("I32", 4, DataType.INT),
  I8("I8", 1, DataType.BYTE),
  U8("U8", 1, DataType.UBYTE),
  BOOL("BOOL", 1, DataType.BOOL);

  private final String code;
  private final int bytes;
  private final DataType loadedAs;

  DType(String code, int bytes, DataType loadedAs) {
    this.code = code;
    this.bytes = bytes;
    this.loadedAs = loadedAs;
  }

  /** The name used in the safetensors JSON header, e.g. {@code "BF16"}. */
  public String code() { return code; }

  /** Bytes per element on disk. */
  public int bytes() { return bytes; }

  /** The ND4J type {@link SafeTensors#load} returns for this dtype. */
  public DataType loadedAs() { return loadedAs; }

  /** The dtype named {@code code} in a header, if it is one this reader supports. */
  public static Optional<DType> fromCode(String code) {
    return Arrays.stream(values()).filter(d -> d.code.equals(code)).findFirst();
  }

  /** The dtype an ND4J array of type {@code type} is written as. */
  public static DType fromNd4j(DataType type) {
    return switch (type) {
      case FLOAT -> F32;
      case DOUBLE -> F64;
      case HALF -> F16;
      case BFLOAT16 -> BF16;
      case LONG -> I64;
      case INT -> I32;
      case BYTE -> I8;
      case UBYTE -> U8;
      case BOOL -> BOOL;
      default -> throw new IllegalArgumentException(
          "ND4J type " + type + " has no safetensors dtype (supported: FLOAT, DOUBLE, HALF, BFLOAT16,"
              + " LONG, INT, BYTE, UBYTE, BOOL)");
    };
  }
}
