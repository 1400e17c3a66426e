package dev.peftspark.spark.dist;

import org.apache.spark.HashPartitioner;
import org.apache.spark.api.java.JavaRDD;
import scala.Tuple2;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;

/**
 * Sums a step's per-partition gradients with a fixed shape, so that reruns and retried tasks give the same bits
 * ({@code distributed.aggregation_depth}).
 * <ul>
 *   <li>depth 1: every partition's gradient comes to the driver, which sums them in partition order.</li>
 *   <li>depth d ≥ 2: like {@code treeAggregate}, but deterministic. With fanout f, the smallest f ≥ 2 with
 *   f^d ≥ partitions, d - 1 rounds on the executors each sum fixed groups of f consecutive partial sums
 *   (partial i goes to group i / f; a group is sorted by index and summed in that order, whatever order its
 *   members arrive in); the driver sums the at most f partial sums left, in index order.</li>
 * </ul>
 * Every sum starts from zeros and adds in float, left to right. A tree adds in another order than depth 1
 * ((g0 + g1) + (g2 + g3) against ((g0 + g1) + g2) + g3), so depth ≥ 2 may differ from depth 1 in the last bits;
 * each depth always gives the same bits. The partitions' reports (loss, norm, timing) travel with the partial
 * sums without their gradients, so the driver still names the partition of a non-finite loss or gradient.
 */
final class GradientSum {
  private GradientSum() {}

  /** The sum of partitions {@code parts}' gradients and their reports (gradients dropped), by partition. */
  record Partial(int index, float[] sum, List<GradientPart> parts) implements Serializable {
    static Partial of(GradientPart p) {
      return new Partial(p.partition(), p.grads(), new ArrayList<>(List.of(p.withoutGrads())));
    }

    long bytes() { return (sum == null ? 0 : 4L * sum.length) + 48L * parts.size() + 16; }
  }

  /**
   * A step's result on the driver.
   *
   * @param grads         the summed gradient; null when no partition held a row of the step
   * @param parts         every partition's report, in partition order (their gradients dropped)
   * @param bytesToDriver what the driver received (depth ≥ 2: only the last partial sums)
   */
  record Summed(float[] grads, List<GradientPart> parts, long bytesToDriver) {}

  /** The smallest fanout f ≥ 2 with f^depth ≥ partitions (depth 1: every partition goes to the driver). */
  static int fanout(int partitions, int depth) {
    if (depth <= 1) return Math.max(1, partitions);
    int f = 2;
    while (Math.pow(f, depth) < partitions) f++;
    return f;
  }

  /** Runs the step's job ({@code parts}: one {@link GradientPart} per partition) and sums it at {@code depth}. */
  static Summed of(JavaRDD<GradientPart> parts, int depth) {
    if (depth <= 1) {
      List<GradientPart> all = parts.collect();
      long bytes = all.stream().mapToLong(GradientPart::bytes).sum();
      Partial sum = combine(0, all.stream().map(Partial::of).toList());
      return new Summed(sum.sum(), sum.parts(), bytes);
    }
    int n = parts.getNumPartitions(), fanout = fanout(n, depth);
    JavaRDD<Partial> level = parts.map(Partial::of);
    for (int round = 1; round < depth && n > 1; round++) {
      int groups = (n + fanout - 1) / fanout;
      // key g < groups: the hash partitioner puts group g alone in partition g
      level = level.mapToPair(p -> new Tuple2<>(p.index() / fanout, p))
          .partitionBy(new HashPartitioner(groups))
          .mapPartitions(GradientSum::combineGroup)
          .setName("peft gradient partial sums, round " + round);
      n = groups;
    }
    List<Partial> left = level.collect();
    long bytes = left.stream().mapToLong(Partial::bytes).sum();
    Partial sum = combine(0, left);
    return new Summed(sum.sum(), sum.parts(), bytes);
  }

  private static Iterator<Partial> combineGroup(Iterator<Tuple2<Integer, Partial>> members) {
    List<Partial> group = new ArrayList<>();
    int key = -1;
    while (members.hasNext()) {
      Tuple2<Integer, Partial> m = members.next();
      if (key >= 0 && m._1() != key) throw new IllegalStateException("groups " + key + " and " + m._1() + " met");
      key = m._1();
      group.add(m._2());
    }
    return group.isEmpty() ? Collections.emptyIterator() : List.of(combine(key, group)).iterator();
  }

  /** Sums {@code group} in index order (whatever order it came in), from zeros, in float. */
  static Partial combine(int index, List<Partial> group) {
    List<Partial> sorted = group.stream().sorted(Comparator.comparingInt(Partial::index)).toList();
    float[] sum = null;
    List<GradientPart> parts = new ArrayList<>();
    for (Partial p : sorted) {
      parts.addAll(p.parts());
      if (p.sum() == null) continue;
      if (sum == null) sum = new float[p.sum().length];
      float[] x = p.sum();
      for (int i = 0; i < sum.length; i++) sum[i] += x[i];
    }
    return new Partial(index, sum, parts);
  }
}
