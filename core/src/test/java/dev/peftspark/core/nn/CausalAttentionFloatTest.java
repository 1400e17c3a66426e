package dev.peftspark.core.nn;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Single-precision attention inside a step arena that holds garbage from an earlier cycle (NaN): its scores come
 * uninitialised from the arena and the products skip the blocks above the diagonal, so nothing may read an entry
 * the step did not write. Output and dL/dx against the double reference; packed documents and padding, grouped
 * heads, causal blocks smaller than the sequence.
 */
class CausalAttentionFloatTest {
  private static final int[][] MASK = {{1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2}, {0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1}};

  @Test
  void floatAttentionInAStaleArenaMatchesTheDoubleReference() {
    int heads = 4, kvHeads = 2, hd = 6, h = heads * hd, n = MASK.length * MASK[0].length;
    SplittableRandom rng = new SplittableRandom(9);
    INDArray wq = GradCheck.randn(rng, heads * hd, h).muli(0.3), wk = GradCheck.randn(rng, kvHeads * hd, h).muli(0.3);
    INDArray wv = GradCheck.randn(rng, kvHeads * hd, h).muli(0.3), wo = GradCheck.randn(rng, h, heads * hd).muli(0.3);
    INDArray x = GradCheck.randn(rng, n, h), dy = GradCheck.randn(rng, n, h);

    CausalAttention ref = attention(DataType.DOUBLE, wq, wk, wv, wo, heads, kvHeads, hd);
    CausalMask refMask = CausalMask.of(MASK, 0, DataType.DOUBLE);
    INDArray yRef = ref.forward(x.castTo(DataType.DOUBLE), refMask, new Rope(hd, 100.0).tables(refMask.positions(), DataType.DOUBLE));
    INDArray dxRef = ref.backward(dy.castTo(DataType.DOUBLE), true);

    try (var ws = Nd4jSetup.stepWorkspace()) {      // the first cycle sizes the arena and leaves NaN in it
      Nd4j.createUninitialized(DataType.FLOAT, 1 << 16).assign(Float.NaN);
    }
    for (int cycle = 0; cycle < 2; cycle++) {       // and the next cycles' own leftovers
      try (var ws = Nd4jSetup.stepWorkspace()) {
        CausalAttention fast = attention(DataType.FLOAT, wq, wk, wv, wo, heads, kvHeads, hd);
        fast.setCausalBlock(4);
        CausalMask mask = CausalMask.of(MASK, 0, DataType.FLOAT);
        INDArray y = fast.forward(x.castTo(DataType.FLOAT), mask, new Rope(hd, 100.0).tables(mask.positions(), DataType.FLOAT));
        INDArray dx = fast.backward(dy.castTo(DataType.FLOAT), true);
        assertClose("y, cycle " + cycle, yRef, y);
        assertClose("dx, cycle " + cycle, dxRef, dx);
      }
    }
  }

  private static CausalAttention attention(DataType t, INDArray wq, INDArray wk, INDArray wv, INDArray wo, int heads, int kvHeads, int hd) {
    return new CausalAttention(linear("q", wq, t), linear("k", wk, t), linear("v", wv, t), linear("o", wo, t),
        heads, kvHeads, hd, new Rope(hd, 100.0));
  }

  private static Linear linear(String name, INDArray w, DataType t) {
    return new Linear(name, Param.frozen(name + ".weight", w.castTo(t)), null);
  }

  private static void assertClose(String what, INDArray ref, INDArray got) {
    double err = ref.sub(got.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    assertTrue(err < 1e-4, what + ": max |reference - float| = " + err);   // NaN fails too
  }
}
