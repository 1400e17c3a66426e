package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** A lookup table {@code [V, H]}: {@code ids [N] -> rows [N, H]}; backward scatter-adds into the table's gradient. */
public final class TokenEmbedding {
  private final String name;
  private final Param table;
  private int[] ids;            // kept for the backward of a trainable table

  public TokenEmbedding(String name, Param table) {
    if (table.shape.length != 2) throw new IllegalArgumentException(name + ": table must be 2-D, got " + table);
    this.name = name;
    this.table = table;
  }

  public String name() { return name; }
  public Param table() { return table; }
  public int rows() { return (int) table.shape[0]; }

  public INDArray forward(int[] flatIds) {
    long rows = table.shape[0];
    for (int id : flatIds) {
      if (id < 0 || id >= rows) throw new IllegalArgumentException(name + ": index " + id + " outside 0.." + (rows - 1));
    }
    ids = table.isTrainable() ? flatIds : null;
    return Nd4j.pullRows(table.value, 1, flatIds);
  }

  /** Accumulates the table's gradient (sparse row updates); a frozen table does nothing. */
  public void backward(INDArray dy) {
    if (table.isTrainable()) {
      for (int i = 0; i < ids.length; i++) table.grad.getRow(ids[i]).addi(dy.getRow(i));
    }
    ids = null;
  }
}
