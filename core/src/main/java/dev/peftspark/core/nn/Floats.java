package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.FloatBuffer;

/**
 * Bulk copies between FLOAT arrays and Java {@code float[]} through NIO views of the native memory, for kernels
 * written as plain Java loops. (ND4J's {@code asFloat()} and {@code createFromArray} copy element by element:
 * measured 3-6 ms for 3 MB, against 0.3 ms here.)
 */
public final class Floats {
  private Floats() {}

  /** The values of {@code a} in c order. */
  public static float[] read(INDArray a) {
    INDArray c = a.isView() || a.ordering() != 'c' ? a.dup('c') : a;
    float[] out = new float[(int) c.length()];
    FloatBuffer buf = c.data().asNioFloat();
    buf.position((int) c.offset());
    buf.get(out);
    return out;
  }

  /** A new FLOAT array of {@code shape} holding {@code values} (c order). */
  public static INDArray write(float[] values, long... shape) {
    INDArray out = Nd4j.createUninitialized(DataType.FLOAT, shape, 'c');
    FloatBuffer buf = out.data().asNioFloat();
    buf.position((int) out.offset());
    buf.put(values);
    return out;
  }
}
