package dev.peftspark.core.optim;

/** Linear warmup from 0 to the peak, then linear or cosine decay to 0, or constant (HF's schedulers). */
public record LrSchedule(double peak, int warmupSteps, int totalSteps, String kind) {
  public LrSchedule {
    if (!kind.equals("linear") && !kind.equals("cosine") && !kind.equals("constant"))
      throw new IllegalArgumentException("train.schedule must be linear, cosine or constant, got '" + kind + "'");
  }

  public static LrSchedule of(double peak, double warmupRatio, int totalSteps, String kind) {
    return new LrSchedule(peak, (int) Math.ceil(warmupRatio * totalSteps), totalSteps, kind);
  }

  /** Learning rate for optimizer step {@code step} (0-based). */
  public double at(int step) {
    if (step < warmupSteps) return peak * (step + 1) / (warmupSteps + 1.0);
    if (kind.equals("constant")) return peak;
    double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
    progress = Math.min(1, progress);
    return kind.equals("linear") ? peak * (1 - progress) : peak * 0.5 * (1 + Math.cos(Math.PI * progress));
  }
}
