package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A lookup table {@code [V, H]}: {@code ids [N] -> rows [N, H]}; backward scatter-adds into the table's gradient.
 * A frozen table may be stored in a narrower type than the model computes in (16 bits): only the looked-up rows
 * are widened.
 */
public final class TokenEmbedding {
  private final String name;
  private final Param table;
  private final DataType compute;   // type of the rows returned
  private int[] ids;            // kept for the backward of a trainable table

  public TokenEmbedding(String name, Param table) { this(name, table, table.value().dataType()); }

  /** @param compute the type of the returned rows; a table stored in another type must be frozen */
  public TokenEmbedding(String name, Param table, DataType compute) {
    if (table.shape.length != 2) throw new IllegalArgumentException(name + ": table must be 2-D, got " + table);
    if (table.isTrainable() && table.value().dataType() != compute)
      throw new IllegalArgumentException(name + ": a trainable table must be stored in the compute type " + compute
          + ", got " + table.value().dataType());
    this.name = name;
    this.table = table;
    this.compute = compute;
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
    INDArray picked = Nd4j.pullRows(table.value, 1, flatIds);
    if (picked.dataType() == compute) return picked;
    INDArray wide = picked.castTo(compute);
    picked.close();
    return wide;
  }

  /** Accumulates the table's gradient (sparse row updates); a frozen table does nothing. */
  public void backward(INDArray dy) {
    if (table.isTrainable()) {
      if (NativeFloats.contiguous(table.grad) && NativeFloats.contiguous(dy)) scatterFloat(dy);
      else for (int i = 0; i < ids.length; i++) table.grad.getRow(ids[i]).addi(dy.getRow(i));
    }
    ids = null;
  }

  /**
   * The same row additions, in the same order, as one Java loop over the native buffers: the ND4J form costs two
   * views and an op per token (~1,000 a step at the bench's shape).
   */
  private void scatterFloat(INDArray dy) {
    int h = (int) table.shape[1];
    if (dy.length() != (long) ids.length * h)
      throw new IllegalArgumentException(name + ": gradient " + java.util.Arrays.toString(dy.shape()) + " for " + ids.length + " tokens of width " + h);
    java.nio.FloatBuffer d = NativeFloats.view(dy, 0, (int) dy.length());
    for (int i = 0; i < ids.length; i++) {
      java.nio.FloatBuffer g = NativeFloats.view(table.grad, (long) ids[i] * h, h);
      for (int j = 0, o = i * h; j < h; j++) g.put(j, g.get(j) + d.get(o + j));
    }
  }
}
