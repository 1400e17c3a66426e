package dev.peftspark.core.nn;

import dev.peftspark.core.train.RowSplit;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A replica's trainable tensors over a shared value buffer with a gradient buffer of its own; gradients summed back. */
class ParamSetSharingTest {
  private static List<Param> params(double first) {
    return List.of(Param.trainable("a", Nd4j.valueArrayOf(new long[] {2, 3}, first, DataType.DOUBLE)),
        Param.trainable("b", Nd4j.valueArrayOf(new long[] {4}, 7.0, DataType.DOUBLE)));
  }

  @Test
  void replicaReadsTheSharedValuesAndWritesItsOwnGradients() {
    ParamSet primary = new ParamSet(params(1.0), DataType.DOUBLE);
    List<Param> mine = params(99.0);   // a replica's own init: must not reach the shared values
    ParamSet replica = primary.sharingValues(mine);
    assertEquals(1.0, primary.get("a").value().getDouble(1, 2));
    assertEquals(1.0, mine.get(0).value().getDouble(1, 2), "the replica reads the primary's values");
    primary.values().addi(0.5);   // an optimizer step on the primary
    assertEquals(7.5, mine.get(1).value().getDouble(3));
    mine.get(0).grad().assign(2.0);
    assertEquals(0.0, primary.grads().sumNumber().doubleValue(), "gradients are not shared");
    assertEquals(12.0, replica.grads().sumNumber().doubleValue());
    assertArrayEquals(primary.range("b"), replica.range("b"));
  }

  @Test
  void aReplicaOfAnotherShapeIsRefusedByName() {
    ParamSet primary = new ParamSet(params(1.0), DataType.DOUBLE);
    var other = List.of(Param.trainable("a", Nd4j.zeros(DataType.DOUBLE, 3, 2)), Param.trainable("b", Nd4j.zeros(DataType.DOUBLE, 4)));
    var e = assertThrows(IllegalArgumentException.class, () -> primary.sharingValues(other));
    assertTrue(e.getMessage().contains("a[3, 2]") && e.getMessage().contains("a[2, 3]"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> primary.sharingValues(List.of(other.get(1))));
  }

  @Test
  void addIntoSumsEveryBufferExactlyInOrder() {
    for (DataType t : List.of(DataType.DOUBLE, DataType.FLOAT)) {
      int n = 300_001;   // several blocks, uneven
      SplittableRandom rng = new SplittableRandom(4);
      double[][] v = new double[3][n];
      for (double[] row : v) for (int i = 0; i < n; i++) row[i] = rng.nextDouble() - 0.5;
      INDArray into = Nd4j.createFromArray(v[0]).castTo(t);
      RowSplit.addInto(into, List.of(Nd4j.createFromArray(v[1]).castTo(t), Nd4j.createFromArray(v[2]).castTo(t)));
      INDArray expected = Nd4j.createFromArray(v[0]).castTo(t).addi(Nd4j.createFromArray(v[1]).castTo(t)).addi(Nd4j.createFromArray(v[2]).castTo(t));
      assertEquals(expected, into, t.toString());
    }
  }
}
