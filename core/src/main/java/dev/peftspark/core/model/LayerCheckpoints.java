package dev.peftspark.core.model;

import dev.peftspark.core.nn.Nd4jSetup;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;

/**
 * Gradient checkpointing over a stack of transformer layers: the forward keeps only each layer's input and runs
 * the layer in a reused arena ({@link Nd4jSetup#layerWorkspace}) that is recycled as soon as its output is copied
 * out; backward runs the layer's forward again from its saved input (dropout masks repeated), then its backward,
 * in the same arena, so one layer's activations exist at a time and each is released explicitly, not by the GC.
 * Costs one more forward per layer.
 */
final class LayerCheckpoints {
  /** One layer as the checkpointed stack sees it (the mask and rotary tables bound in). */
  interface Layer {
    INDArray forward(INDArray x);

    INDArray backward(INDArray dy, boolean needInputGrad);

    /** The next forward repeats the last one exactly (same dropout masks). */
    void repeatNextForward();
  }

  private List<? extends Layer> stack;
  private INDArray[] inputs;   // [i]: the input of layer i from the last forward

  /** The stack's output (outside any workspace); keeps each layer's input for {@link #backward}. */
  INDArray forward(List<? extends Layer> layers, INDArray x) {
    release();
    stack = layers;
    inputs = new INDArray[layers.size()];
    for (int i = 0; i < layers.size(); i++) {
      inputs[i] = x;
      try (var ws = Nd4jSetup.layerWorkspace()) {
        x = layers.get(i).forward(x).detach();
      }
    }
    return x;
  }

  /**
   * dL/d(input of layer {@code lowest}) from dL/d(stack output), or null when {@code needInputGrad} is false;
   * layers below {@code lowest} are not visited.
   */
  INDArray backward(INDArray dy, int lowest, boolean needInputGrad) {
    if (stack == null) throw new IllegalStateException("backward without a checkpointed forward");
    INDArray d = dy;
    for (int i = stack.size() - 1; i >= lowest; i--) {
      Layer layer = stack.get(i);
      boolean needInput = i > lowest || needInputGrad;
      INDArray dx;
      try (var ws = Nd4jSetup.layerWorkspace()) {
        layer.repeatNextForward();
        layer.forward(inputs[i]);
        dx = layer.backward(d, needInput);
        dx = dx == null ? null : dx.detach();
      }
      if (d != dy) d.close();
      d = dx;
    }
    release();
    return d;
  }

  /** Frees the saved inputs (the first, the stack's input, belongs to the caller). */
  private void release() {
    if (inputs != null) for (int i = 1; i < inputs.length; i++) if (inputs[i] != null) inputs[i].close();
    inputs = null;
    stack = null;
  }
}
