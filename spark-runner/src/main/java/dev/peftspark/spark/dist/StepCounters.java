package dev.peftspark.spark.dist;

import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.util.DoubleAccumulator;
import org.apache.spark.util.LongAccumulator;

import java.io.Serializable;

/**
 * Named Spark accumulators the tasks add to, so the Spark UI shows per stage and per task how many examples and
 * tokens were trained on and their loss. Spark applies a task's updates once even when the task is retried.
 *
 * @param lossSum the sum of the examples' losses (divided by {@code examples}: the mean training loss)
 */
public record StepCounters(LongAccumulator examples, LongAccumulator tokens, DoubleAccumulator lossSum)
    implements Serializable {

  static StepCounters register(JavaSparkContext sc) {
    return new StepCounters(sc.sc().longAccumulator("peft examples"), sc.sc().longAccumulator("peft tokens"),
        sc.sc().doubleAccumulator("peft summed example loss"));
  }

  /** @param meanLoss the mean loss over these {@code examples} */
  void add(int examples, int tokens, double meanLoss) {
    this.examples.add(examples);
    this.tokens.add(tokens);
    this.lossSum.add(meanLoss * examples);
  }
}
