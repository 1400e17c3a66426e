package dev.peftspark.datasets.tools;

import dev.peftspark.core.io.MiniLm;
import dev.peftspark.core.io.SafeTensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * Writes the bundled all-MiniLM-L6-v2 weights (read from its ONNX export) as a safetensors file with
 * Hugging Face BertModel names and [out, in] linear weights, so the PyTorch benchmark in bench/pytorch can
 * start from the same pretrained model as the Java side ({@code --weights}). A command-line tool, not a test.
 *
 * <pre>ExportMiniLmWeights OUT.safetensors</pre>
 */
public final class ExportMiniLmWeights {
  private ExportMiniLmWeights() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 1) {
      System.err.println("usage: ExportMiniLmWeights OUT.safetensors");
      System.exit(2);
    }
    Path out = Path.of(args[0]);
    var weights = MiniLm.loadWeights();
    SafeTensors.write(out, weights, Map.of("source", "all-minilm-l6-v2.onnx (langchain4j jar)"));
    System.err.printf("wrote %d tensors to %s%n", weights.size(), out);
  }
}
