package dev.peftspark.core.train;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.optim.LrSchedule;
import dev.peftspark.core.optim.Optimizer;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What an optimizer step does with a gradient, wherever it was computed (this JVM, or summed from Spark
 * partitions): clip the global norm, refuse a non-finite loss or gradient, take the scheduled learning rate and
 * update the flat parameter buffer in place.
 */
public final class GradientUpdate {
  private final JobConfig.Train cfg;
  private final Optimizer optimizer;
  private final LrSchedule schedule;
  private final int totalSteps;

  public GradientUpdate(long size, INDArray decayMask, JobConfig.Train cfg, int stepsPerEpoch) {
    this.cfg = cfg;
    this.totalSteps = totalSteps(cfg, stepsPerEpoch);
    this.optimizer = Optimizer.create(cfg.optimizer(), Math.max(1, size), decayMask, cfg.weightDecay(),
        cfg.momentum(), cfg.beta1(), cfg.beta2(), cfg.eps());
    this.schedule = LrSchedule.of(cfg.lr(), cfg.warmupRatio(), totalSteps, cfg.schedule());
  }

  /** Optimizer steps of a run: every batch of every epoch, capped by {@code train.max_steps}. */
  public static int totalSteps(JobConfig.Train cfg, int stepsPerEpoch) {
    int planned = stepsPerEpoch * cfg.epochs();
    return cfg.maxSteps() > 0 ? Math.min(cfg.maxSteps(), planned) : planned;
  }

  public int totalSteps() { return totalSteps; }
  public Optimizer optimizer() { return optimizer; }
  public LrSchedule schedule() { return schedule; }

  /**
   * Applies step {@code step} (0-based): clips {@code grads} in place, checks, updates {@code values}.
   *
   * @param where appended to the error message (e.g. " (partition 1)"), or ""
   * @return the gradient norm before clipping
   * @throws Trainer.NonFiniteException when the loss or the gradient norm is NaN or infinite (nothing applied)
   */
  public double apply(INDArray values, INDArray grads, double loss, int step, String where) {
    double norm = Optimizer.clipGlobalNorm(grads, cfg.gradClip());
    checkFinite(loss, norm, step, where);
    optimizer.step(values, grads, schedule.at(step));
    return norm;
  }

  /** Throws when the loss or the gradient norm of step {@code step} (0-based) is not finite. */
  public static void checkFinite(double loss, double norm, int step, String where) {
    if (Double.isFinite(loss) && Double.isFinite(norm)) return;
    throw new Trainer.NonFiniteException("step " + (step + 1) + where + ": "
        + (Double.isFinite(loss) ? "gradient norm" : "loss") + " is " + (Double.isFinite(loss) ? norm : loss)
        + "; the step was not applied and nothing was saved (try a lower train.lr)");
  }
}
