package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * What a Spark gradient task spends moving the adapter between Java arrays and the model's flat buffers, per
 * step: values in, gradient out. Before: {@code values.assign(Nd4j.createFromArray(v))} and
 * {@code grads.toFloatVector()}; now: {@link Floats#write(float[], INDArray)} into the existing buffer and
 * {@link Floats#read}. Thread CPU time, MiniLM LoRA r=8 q,v size (74,498 floats). Run with
 * {@code mvn -q -o -pl core test -Dtest=ParamCopyBench -Dpeft.bench=true -Dsurefire.failIfNoSpecifiedTests=false}
 * (the figures are logged to core/target/surefire-reports/dev.peftspark.core.nn.ParamCopyBench-output.txt).
 */
class ParamCopyBench {
  private static final Logger log = LoggerFactory.getLogger(ParamCopyBench.class);
  private static final int SIZE = 74_498, ROUNDS = 2_000;

  @Test
  void copyCostPerStep() {
    assumeTrue(Boolean.getBoolean("peft.bench"), "a benchmark: -Dpeft.bench=true");
    Nd4jSetup.ensure();
    float[] v = new float[SIZE];
    Random r = new Random(1);
    for (int i = 0; i < SIZE; i++) v[i] = (float) r.nextGaussian();
    INDArray values = Nd4j.create(DataType.FLOAT, SIZE), grads = Nd4j.create(DataType.FLOAT, SIZE);
    grads.assign(Nd4j.createFromArray(v));
    ThreadMXBean bean = ManagementFactory.getThreadMXBean();
    double[] before = new double[3], after = new double[3];
    for (int rep = 0; rep < 3; rep++) {   // interleaved, the first of each as warm-up
      long t0 = bean.getCurrentThreadCpuTime();
      float[] out = null;
      for (int i = 0; i < ROUNDS; i++) {
        values.assign(Nd4j.createFromArray(v));
        out = grads.toFloatVector();
      }
      long t1 = bean.getCurrentThreadCpuTime();
      for (int i = 0; i < ROUNDS; i++) {
        Floats.write(v, values);
        out = Floats.read(grads);
      }
      long t2 = bean.getCurrentThreadCpuTime();
      assertArrayEquals(v, out);
      before[rep] = (t1 - t0) / 1e6 / ROUNDS;
      after[rep] = (t2 - t1) / 1e6 / ROUNDS;
    }
    log.info("adapter copy in + gradient copy out, {} floats, CPU ms per step: createFromArray/assign + "
        + "toFloatVector {} / {}, Floats.write + Floats.read {} / {} (runs 2 and 3)", SIZE,
        String.format("%.3f", before[1]), String.format("%.3f", before[2]), String.format("%.3f", after[1]),
        String.format("%.3f", after[2]));
  }
}
