package dev.peftspark.spark.dist;

import dev.peftspark.core.nn.Floats;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.optim.Optimizer;
import dev.peftspark.core.train.StepMetrics;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

/**
 * Training checkpoints under {@code output_dir/checkpoints/step-N}, on any Hadoop FileSystem. Each is written
 * under a temporary name, renamed into place, and marked {@code _COMPLETE} last; only marked ones are trusted, and
 * the marker is the first thing deleted. A directory rename is atomic on HDFS and local disks but is copy + delete
 * on S3 (s3a://), where a crash can leave a {@code step-N} with some of its files; the marker keeps that (and a
 * half-deleted old one) from counting as a checkpoint. The newest marked one that reads back is where a rerun
 * resumes. The data cursor is the step itself (epoch = step / steps per epoch; the batcher's order is a function
 * of seed and epoch) and the RNG state is the seed (dropout masks are seeded by seed, step and partition), so both
 * are checked, not stored twice.
 */
public final class Checkpoints {
  private static final Logger log = LoggerFactory.getLogger(Checkpoints.class);
  public static final String DIR = dev.peftspark.spark.job.ClassificationJob.CHECKPOINTS;
  private static final String FILE = "state.bin";
  /** Written after everything else of a checkpoint: a {@code step-N} without it is ignored. */
  public static final String COMPLETE = "_COMPLETE";
  private static final int MAGIC = 0x50454654;   // "PEFT"
  private static final int VERSION = 2;   // 2: step metrics carry the Spark overhead breakdown
  private static final int KEEP = 2;

  /**
   * Everything needed to continue exactly.
   *
   * @param size    trainable parameters (a checkpoint of another model shape is refused)
   * @param history the metrics of steps 1..step, replayed into the resumed run's metrics.jsonl
   */
  public record State(int step, long seed, long size, float[] values, OptState optimizer, List<StepMetrics> history) {}

  private final Path dir;
  private final Configuration conf;

  public Checkpoints(String outputDir, Configuration conf) {
    this.dir = new Path(new Path(outputDir), DIR);
    this.conf = conf;
  }

  public Path dir() { return dir; }

  public void write(State s) throws IOException {
    FileSystem fs = dir.getFileSystem(conf);
    fs.mkdirs(dir);
    Path tmp = new Path(dir, ".tmp-step-" + s.step() + "-" + UUID.randomUUID().toString().substring(0, 8));
    Path target = new Path(dir, "step-" + s.step());
    try {
      try (DataOutputStream out = fs.create(new Path(tmp, FILE), false)) {
        encode(s, out);
      }
      delete(fs, target);   // a rerun passing the same step again
      if (!fs.rename(tmp, target)) throw new IOException("cannot rename " + tmp + " to " + target);
      fs.create(new Path(target, COMPLETE), true).close();
    } catch (IOException | RuntimeException e) {
      fs.delete(tmp, true);
      throw e;
    }
    List<Integer> steps = steps(fs);
    for (int i = KEEP; i < steps.size(); i++) delete(fs, new Path(dir, "step-" + steps.get(i)));
  }

  /** Unmarks a checkpoint before removing it, so an interrupted (non-atomic) delete leaves nothing trusted. */
  private static void delete(FileSystem fs, Path step) throws IOException {
    if (!fs.exists(step)) return;
    fs.delete(new Path(step, COMPLETE), false);
    fs.delete(step, true);
  }

  /**
   * Continues a run from the newest checkpoint, if any: checks it is one of this run (same trainable size and
   * seed, a step within {@code totalSteps}), loads its parameters into {@code ps} and its state into
   * {@code optimizer}, and returns it (its step and the metrics of the steps before).
   *
   * @throws IllegalStateException naming the checkpoint and what differs when it is another run's
   */
  public Optional<State> resume(ParamSet ps, Optimizer optimizer, long seed, int totalSteps) throws IOException {
    Optional<State> found = newest();
    if (found.isEmpty()) return found;
    State s = found.get();
    if (s.size() != ps.size() || s.seed() != seed || s.step() > totalSteps) {
      throw new IllegalStateException("checkpoint " + dir + "/step-" + s.step() + " is from another run ("
          + s.size() + " trainable parameters, seed " + s.seed() + ", step " + s.step() + "; this run: "
          + ps.size() + ", seed " + seed + ", " + totalSteps + " steps); remove " + dir
          + " or choose another output_dir");
    }
    Floats.write(s.values(), ps.values());
    optimizer.load(s.optimizer().toNd4j());
    log.info("resuming from {}/step-{}", dir, s.step());
    return found;
  }

  /** Whether a run that went from step {@code before} to {@code after} passed a multiple of {@code every}. */
  public static boolean due(int before, int after, int every) {
    return every > 0 && before / every != after / every;
  }

  /** Writes the checkpoint of step {@code step}: parameters, optimizer state and the metrics so far. */
  public void write(int step, long seed, ParamSet ps, Optimizer optimizer, List<StepMetrics> history)
      throws IOException {
    write(new State(step, seed, ps.size(), Floats.read(ps.values()), OptState.of(optimizer.state()),
        List.copyOf(history)));
  }

  /** The newest checkpoint that reads back whole, or empty. */
  public Optional<State> newest() throws IOException {
    FileSystem fs = dir.getFileSystem(conf);
    for (int step : steps(fs)) {
      Path file = new Path(new Path(dir, "step-" + step), FILE);
      try (DataInputStream in = fs.open(file)) {
        return Optional.of(decode(in));
      } catch (IOException e) {
        log.warn("checkpoint {} is unreadable ({}); trying an older one", file, e.getMessage());
      }
    }
    return Optional.empty();
  }

  /** Complete (marked) checkpoints' steps, newest first. */
  private List<Integer> steps(FileSystem fs) throws IOException {
    FileStatus[] all;
    try {
      all = fs.listStatus(dir);
    } catch (FileNotFoundException e) {
      return List.of();
    }
    List<Integer> steps = new ArrayList<>();
    for (FileStatus f : all) {
      String name = f.getPath().getName();
      if (f.isDirectory() && name.matches("step-\\d+") && fs.exists(new Path(f.getPath(), COMPLETE))) {
        steps.add(Integer.parseInt(name.substring(5)));
      }
    }
    steps.sort(Comparator.reverseOrder());
    return steps;
  }

  static void encode(State s, DataOutputStream out) throws IOException {
    out.writeInt(MAGIC);
    out.writeInt(VERSION);
    out.writeInt(s.step());
    out.writeLong(s.seed());
    out.writeLong(s.size());
    writeFloats(out, s.values());
    out.writeInt(s.optimizer().vectors().size());
    for (var e : s.optimizer().vectors().entrySet()) {
      out.writeUTF(e.getKey());
      writeFloats(out, e.getValue());
    }
    out.writeInt(s.optimizer().counters().size());
    for (var e : s.optimizer().counters().entrySet()) {
      out.writeUTF(e.getKey());
      out.writeLong(e.getValue());
    }
    out.writeInt(s.history().size());
    for (StepMetrics m : s.history()) writeMetrics(out, m);
  }

  static State decode(DataInputStream in) throws IOException {
    if (in.readInt() != MAGIC) throw new IOException("not a peft-spark checkpoint");
    int version = in.readInt();
    if (version != VERSION && version != 1) {
      throw new IOException("checkpoint format " + version + ", expected " + VERSION);
    }
    int step = in.readInt();
    long seed = in.readLong();
    long size = in.readLong();
    float[] values = readFloats(in);
    LinkedHashMap<String, float[]> vectors = new LinkedHashMap<>();
    for (int i = in.readInt(); i > 0; i--) vectors.put(in.readUTF(), readFloats(in));
    LinkedHashMap<String, Long> counters = new LinkedHashMap<>();
    for (int i = in.readInt(); i > 0; i--) counters.put(in.readUTF(), in.readLong());
    List<StepMetrics> history = new ArrayList<>();
    for (int i = in.readInt(); i > 0; i--) history.add(readMetrics(in, version));
    return new State(step, seed, size, values, new OptState(vectors, counters), history);
  }

  private static void writeFloats(DataOutputStream out, float[] a) throws IOException {
    out.writeInt(a.length);
    for (float f : a) out.writeFloat(f);
  }

  private static float[] readFloats(DataInputStream in) throws IOException {
    float[] a = new float[in.readInt()];
    for (int i = 0; i < a.length; i++) a[i] = in.readFloat();
    return a;
  }

  private static void writeMetrics(DataOutputStream out, StepMetrics m) throws IOException {
    out.writeInt(m.step());
    out.writeInt(m.epoch());
    for (double d : new double[] {m.loss(), m.lr(), m.gradNorm(), m.examplesPerS(), m.tokensPerS()}) out.writeDouble(d);
    out.writeLong(m.elapsedMs());
    out.writeInt(m.examples());
    out.writeInt(m.tokens());
    var x = m.exchange();
    out.writeBoolean(x != null);
    if (x != null) {
      for (long l : new long[] {x.bytesToExecutors(), x.bytesFromExecutors(), x.partitions(), x.computeMs(),
          x.sparkOverheadMs(), x.driverUpdateMs(), x.broadcastMs(), x.launchMs(), x.taskReadMs(), x.resultMs()}) {
        out.writeLong(l);
      }
    }
  }

  /** Format 1 had no breakdown of the Spark overhead (read as zeros). */
  private static StepMetrics readMetrics(DataInputStream in, int version) throws IOException {
    int step = in.readInt(), epoch = in.readInt();
    double[] d = new double[5];
    for (int i = 0; i < 5; i++) d[i] = in.readDouble();
    long elapsed = in.readLong();
    int examples = in.readInt(), tokens = in.readInt();
    StepMetrics.Exchange x = null;
    if (in.readBoolean()) {
      long[] l = new long[10];
      for (int i = 0; i < (version == 1 ? 6 : 10); i++) l[i] = in.readLong();
      x = new StepMetrics.Exchange(l[0], l[1], (int) l[2], l[3], l[4], l[5], l[6], l[7], l[8], l[9]);
    }
    return new StepMetrics(step, epoch, d[0], d[1], d[2], d[3], d[4], elapsed, examples, tokens, x);
  }
}
