package dev.peftspark.core.nn;

import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration;
import org.nd4j.linalg.api.memory.enums.AllocationPolicy;
import org.nd4j.linalg.api.memory.enums.LearningPolicy;
import org.nd4j.linalg.api.memory.enums.ResetPolicy;
import org.nd4j.linalg.api.memory.enums.SpillPolicy;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOpsHolder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Process-wide ND4J settings that decide speed on CPU, in one place.
 *
 * <p>Threads: libnd4j's own thread pool (element-wise ops) and OpenBLAS's (GEMM) both spin-wait between ops; on
 * a few cores they steal each other's time (measured on 2 cores: 3.1 s of CPU per MiniLM LoRA step with 2
 * libnd4j threads, 1.1 s with 1). So element-wise ops run on {@code peft.nd4j.threads} threads (default 1, env
 * {@code PEFT_SPARK_ND4J_THREADS}) and GEMM keeps OpenBLAS's threads ({@code OPENBLAS_NUM_THREADS}).
 *
 * <p>Workspaces: activations of one forward/backward are allocated from a reused arena instead of fresh off-heap
 * buffers (allocation, not arithmetic, dominated element-wise ops).
 */
public final class Nd4jSetup {
  private static final Logger log = LoggerFactory.getLogger(Nd4jSetup.class);
  private static volatile boolean done;

  private static final WorkspaceConfiguration STEP = WorkspaceConfiguration.builder()
      .initialSize(0).overallocationLimit(0.3)
      .policyAllocation(AllocationPolicy.OVERALLOCATE).policyLearning(LearningPolicy.FIRST_LOOP)
      .policyReset(ResetPolicy.BLOCK_LEFT).policySpill(SpillPolicy.REALLOCATE).build();

  /** Gradient checkpointing's per-layer arena: sized by its first cycles, grown when a later one spills. */
  private static final WorkspaceConfiguration LAYER = WorkspaceConfiguration.builder()
      .initialSize(0).overallocationLimit(0.0)
      .policyAllocation(AllocationPolicy.OVERALLOCATE).policyLearning(LearningPolicy.FIRST_LOOP)
      .policyReset(ResetPolicy.BLOCK_LEFT).policySpill(SpillPolicy.REALLOCATE).build();

  private Nd4jSetup() {}

  public static void ensure() {
    if (done) return;
    synchronized (Nd4jSetup.class) {
      if (done) return;
      String v = System.getProperty("peft.nd4j.threads", System.getenv().getOrDefault("PEFT_SPARK_ND4J_THREADS", "1"));
      int threads = Integer.parseInt(v.trim());
      Nd4j.getEnvironment().setMaxThreads(threads);
      Nd4j.getEnvironment().setMaxMasterThreads(threads);
      NativeOpsHolder.getInstance().getDeviceNativeOps().setOmpNumThreads(threads);
      log.debug("libnd4j threads: {}", threads);
      done = true;
    }
  }

  /**
   * Opens the per-thread arena for one forward/backward. Arrays created inside are invalid after close: results
   * that must outlive it are {@code detach()}ed; parameters and gradients live outside and are written in place.
   */
  public static MemoryWorkspace stepWorkspace() {
    ensure();
    return Nd4j.getWorkspaceManager().getAndActivateWorkspace(STEP, "peft-step");
  }

  /** The arena of one checkpointed layer's forward, or its recomputed forward and backward (see {@code LayerCheckpoints}). */
  public static MemoryWorkspace layerWorkspace() {
    ensure();
    return Nd4j.getWorkspaceManager().getAndActivateWorkspace(LAYER, "peft-layer");
  }
}
