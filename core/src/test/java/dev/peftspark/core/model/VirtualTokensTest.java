package dev.peftspark.core.model;

import dev.peftspark.core.nn.CausalMask;
import dev.peftspark.core.nn.Param;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The prompt/prefix state both causal LMs share: its checks and its counts (the maths: CausalPromptLearningTest). */
class VirtualTokensTest {
  private static Param param(long rows, long cols) {
    return Param.trainable("p", Nd4j.rand(DataType.DOUBLE, rows, cols));
  }

  @Test
  void promptAndPrefixAreCheckedAndExclusive() {
    VirtualTokens v = new VirtualTokens();
    var wide = assertThrows(IllegalArgumentException.class, () -> v.setPrompt(param(3, 5), 4));
    assertTrue(wide.getMessage().contains("expected [nv, 4] and no prefix"), wide.getMessage());
    v.setPrompt(param(3, 4), 4);
    assertEquals(3, v.promptRows());
    assertEquals(3, v.count());
    var both = assertThrows(IllegalArgumentException.class, () -> v.setPrefix(param(2, 16), 16));
    assertTrue(both.getMessage().contains("and no prompt"), both.getMessage());

    v.setPrompt(null, 4);
    v.setPrefix(param(2, 16), 16);
    assertEquals(0, v.promptRows());
    assertEquals(2, v.prefixRows());
    assertEquals(2, v.count());
    assertThrows(IllegalArgumentException.class, () -> v.setPrefix(param(2, 15), 16));
    List<Param> all = new ArrayList<>();
    v.addParams(all);
    assertEquals(List.of(v.prefix()), all);
  }

  @Test
  void aMaskMadeForOtherVirtualTokensIsRefusedNamingBoth() {
    VirtualTokens v = new VirtualTokens();
    v.setPrompt(param(2, 4), 4);
    int[][] ids = {{1, 2, 3}};
    CausalMask plain = CausalMask.of(new int[][] {{1, 1, 1}}, 0, DataType.DOUBLE);
    var e = assertThrows(IllegalArgumentException.class, () -> v.check(ids, plain));
    assertTrue(e.getMessage().contains("0 virtual rows and 0 prefix keys; the model has 2 and 0"), e.getMessage());
    CausalMask own = v.mask(new int[][] {{1, 1, 1}}, 0, DataType.DOUBLE);
    assertEquals(2, own.virtual());
    v.check(ids, own);   // accepted
    assertThrows(IllegalArgumentException.class, () -> v.check(new int[][] {{1, 2}}, own));
  }

  @Test
  void prependAndBackwardPlaceThePromptRowsAndCollectTheirGradient() {
    VirtualTokens v = new VirtualTokens();
    INDArray words = Nd4j.rand(DataType.DOUBLE, 6, 4);   // 2 examples of 3 tokens
    assertSame(words, v.prepend(words, 2), "no prompt: the embeddings as they are");
    Param p = param(2, 4);
    new dev.peftspark.core.nn.ParamSet(List.of(p), DataType.DOUBLE).zeroGrad();   // gives p its gradient buffer
    v.setPrompt(p, 4);
    INDArray x = v.prepend(words, 2);
    assertEquals(List.of(10L, 4L), List.of(x.size(0), x.size(1)));
    assertEquals(p.value(), x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(5, 7), org.nd4j.linalg.indexing.NDArrayIndex.all()));
    INDArray d = Nd4j.rand(DataType.DOUBLE, 10, 4);
    INDArray dWords = v.backward(d);
    assertEquals(List.of(6L, 4L), List.of(dWords.size(0), dWords.size(1)));
    INDArray expected = d.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 2), org.nd4j.linalg.indexing.NDArrayIndex.all())
        .add(d.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(5, 7), org.nd4j.linalg.indexing.NDArrayIndex.all()));
    assertTrue(expected.equalsWithEps(p.grad(), 1e-12), "prompt gradient: both examples' virtual rows summed");
  }
}
