package dev.peftspark.core.io;

import java.io.IOException;

/** An ONNX model that cannot be read; the message names the source (file or label) and the problem. */
public final class OnnxFormatException extends IOException {
  public OnnxFormatException(String source, String problem) {
    super(source + ": " + problem);
  }
}
