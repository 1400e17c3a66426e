package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The single-precision scatter of the embedding gradient (a loop over the flat gradient buffer) against the ND4J
 * row additions it replaced (the path the double-precision gradient checks run): same additions in the same order,
 * so equal bit for bit, repeated ids included, with the table's gradient at an offset in a {@link ParamSet}.
 */
class TokenEmbeddingTest {
  @Test
  void floatScatterEqualsTheRowByRowAdditions() {
    int v = 7, h = 5;
    Param before = Param.trainable("before.weight", Nd4j.rand(DataType.FLOAT, 3));   // the table starts at offset 3
    Param table = Param.trainable("e.weight", Nd4j.rand(DataType.FLOAT, v, h));
    ParamSet ps = new ParamSet(List.of(before, table), DataType.FLOAT);
    ps.grads().assign(Nd4j.rand(DataType.FLOAT, ps.size()));   // gradients accumulate onto what is there
    INDArray expected = table.grad().dup(), beforeGrad = before.grad().dup();
    int[] ids = {2, 5, 2, 0, 6, 2};
    INDArray dy = Nd4j.rand(DataType.FLOAT, ids.length, h).subi(0.5);
    for (int i = 0; i < ids.length; i++) expected.getRow(ids[i]).addi(dy.getRow(i));

    TokenEmbedding e = new TokenEmbedding("e", table);
    e.forward(ids);
    e.backward(dy);
    assertArrayEquals(expected.ravel().toFloatVector(), table.grad().ravel().toFloatVector(), 0f);
    assertArrayEquals(beforeGrad.toFloatVector(), before.grad().toFloatVector(), 0f, "the neighbour's gradient is untouched");
    assertEquals(ids.length, dy.size(0));
  }

  @Test
  void frozenTableHasNoGradient() {
    Param table = Param.frozen("e.weight", Nd4j.rand(DataType.FLOAT, 4, 3));
    TokenEmbedding e = new TokenEmbedding("e", table);
    e.forward(new int[] {1, 3});
    e.backward(Nd4j.rand(DataType.FLOAT, 2, 3));
    assertEquals(null, table.grad());
  }
}
