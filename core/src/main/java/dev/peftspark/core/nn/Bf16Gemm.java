package dev.peftspark.core.nn;

import dev.peftspark.core.nn.Gemm.Mat;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.dnnl.const_dnnl_op_desc_t;
import org.bytedeco.dnnl.dnnl_engine;
import org.bytedeco.dnnl.dnnl_exec_arg_t;
import org.bytedeco.dnnl.dnnl_matmul_desc_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc_t;
import org.bytedeco.dnnl.dnnl_post_ops;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_attr;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.dnnl.dnnl_stream;
import org.nd4j.linalg.api.buffer.DataType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import static org.bytedeco.dnnl.global.dnnl.*;

/**
 * {@code c = alpha·op(a)·op(b) + beta·c} on FLOAT matrices computed as BF16 × BF16 → F32 by oneDNN: both operands
 * are rounded to bf16 (round-to-nearest-even) by oneDNN reorders into per-thread buffers, then a matmul primitive
 * multiplies them with FP32 accumulation (AMX / AVX512_BF16 kernels: 1.5-2.6× OpenBLAS sgemm per thread on the
 * LLaMA bench's projections; slower on the head's k = 8000 product). Transposes and row strides are expressed as
 * memory-descriptor strides, beta as a sum post-op, alpha as an output scale. Single-threaded per call, like the
 * OpenBLAS products {@link Gemm} splits over threads.
 *
 * <p>Everything oneDNN is per thread (stream, primitives, buffers): primitives are cached per shape in a small
 * LRU map per thread, so none is ever destroyed while another thread runs it.
 */
final class Bf16Gemm {
  private static final Logger log = LoggerFactory.getLogger(Bf16Gemm.class);

  /** Primitive sets kept per thread: a step has a few dozen distinct product shapes. */
  private static final int CACHED_PLANS = 128;

  private static final dnnl_engine ENGINE = createEngine();
  private static final ThreadLocal<Local> LOCAL = ThreadLocal.withInitial(Local::new);
  private static final Set<String> LOGGED_IMPLS = ConcurrentHashMap.newKeySet();

  private Bf16Gemm() {}

  private static dnnl_engine createEngine() {
    int omp = OneDnnThreads.single();   // loads ND4J (and its libgomp) before the first oneDNN class
    try {
      dnnl_engine engine = new dnnl_engine();
      check(dnnl_engine_create(engine, dnnl_cpu, 0), "engine_create");
      return engine;
    } finally {
      OneDnnThreads.restore(omp);
    }
  }

  /**
   * Depth of one product: a deeper one (an LM head's dL/dhidden, k = the vocabulary) runs as slices of this depth
   * summed into c. oneDNN 2.5's AMX matmul streams all of a k × n weight per block of rows: at the LLaMA bench's
   * 510 × 8000 × 512 in the step, 62 ms per call in one piece, 7.6 ms (median) per 1024-deep slice (BENCHMARKS.md).
   */
  static final int K_SLICE = 1024;

  /** The product on {@code m × k} by {@code k × n}; operands already checked by {@link Gemm#gemm}. */
  static void gemm(Mat a, boolean transA, Mat b, boolean transB, Mat c, int m, int n, int k, double alpha, double beta) {
    if (c.array().dataType() != DataType.FLOAT)
      throw new IllegalArgumentException("bf16 GEMM takes FLOAT operands, got " + c.array().dataType());
    if (k > 2 * K_SLICE) {
      for (int k0 = 0; k0 < k; k0 += K_SLICE) {
        int depth = Math.min(K_SLICE, k - k0);
        product(depthSlice(a, !transA, k0, depth), transA, depthSlice(b, transB, k0, depth), transB, c, m, n, depth,
            alpha, k0 == 0 ? beta : 1.0);
      }
      return;
    }
    product(a, transA, b, transB, c, m, n, k, alpha, beta);
  }

  /** Depth {@code k0 .. k0 + depth} of an operand whose depth runs along its columns ({@code byColumns}) or rows. */
  private static Mat depthSlice(Mat x, boolean byColumns, int k0, int depth) {
    return byColumns ? new Mat(x.array(), x.offset() + k0, x.rows(), depth, x.ld())
        : new Mat(x.array(), x.offset() + (long) k0 * x.ld(), depth, x.cols(), x.ld());
  }

  private static void product(Mat a, boolean transA, Mat b, boolean transB, Mat c, int m, int n, int k, double alpha, double beta) {
    // this thread's OpenMP team must be one thread (Gemm runs one product per thread already), also while the
    // primitives are created: they fix their thread count then, and would later start that many threads each
    int omp = OneDnnThreads.single();
    try {
      Local local = LOCAL.get();
      Plan plan = local.plan(new Key(m, n, k, transA, transB, a.ld(), b.ld(), c.ld(), (float) alpha, (float) beta));
      Pointer aBf16 = local.aBuffer.atLeast(2L * m * k), bBf16 = local.bBuffer.atLeast(2L * k * n);
      Pointer scratch = local.scratch.atLeast(plan.scratchBytes);
      setHandle(plan.aF32, address(a));
      setHandle(plan.aBf16, aBf16);
      setHandle(plan.bF32, address(b));
      setHandle(plan.bBf16, bBf16);
      setHandle(plan.cF32, address(c));
      setHandle(plan.scratchpad, scratch);
      local.execute(plan.reorderA, DNNL_ARG_FROM, plan.aF32, DNNL_ARG_TO, plan.aBf16, plan.scratchpad);
      local.execute(plan.reorderB, DNNL_ARG_FROM, plan.bF32, DNNL_ARG_TO, plan.bBf16, plan.scratchpad);
      local.execute(plan.matmul, DNNL_ARG_SRC, plan.aBf16, DNNL_ARG_WEIGHTS, plan.bBf16, plan.scratchpad,
          DNNL_ARG_DST, plan.cF32);
    } finally {
      OneDnnThreads.restore(omp);
    }
  }

  private record Key(int m, int n, int k, boolean transA, boolean transB, int lda, int ldb, int ldc, float alpha, float beta) {}

  /** The primitives and memory objects (data handles set per call) of one product shape. */
  private static final class Plan {
    final dnnl_primitive reorderA, reorderB, matmul;
    final dnnl_memory aF32, aBf16, bF32, bBf16, cF32, scratchpad;
    final long scratchBytes;
    final String impl;

    Plan(Key key) {
      int m = key.m, n = key.n, k = key.k;
      // op(a) is m×k: a itself is k×m when transposed; the bf16 copy keeps a's orientation, densely packed
      dnnl_memory_desc_t aF32d = desc(m, k, dnnl_f32, key.transA ? 1 : key.lda, key.transA ? key.lda : 1);
      dnnl_memory_desc_t aBf16d = desc(m, k, dnnl_bf16, key.transA ? 1 : k, key.transA ? m : 1);
      dnnl_memory_desc_t bF32d = desc(k, n, dnnl_f32, key.transB ? 1 : key.ldb, key.transB ? key.ldb : 1);
      dnnl_memory_desc_t bBf16d = desc(k, n, dnnl_bf16, key.transB ? 1 : n, key.transB ? k : 1);
      dnnl_memory_desc_t cF32d = desc(m, n, dnnl_f32, key.ldc, 1);

      dnnl_primitive_attr attr = new dnnl_primitive_attr();
      check(dnnl_primitive_attr_create(attr), "primitive_attr_create");
      try {
        check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "set_scratchpad_mode");
        dnnl_primitive_desc ra = reorderDesc(aF32d, aBf16d, attr), rb = reorderDesc(bF32d, bBf16d, attr);
        if (key.alpha != 1f) check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, new float[] {key.alpha}), "set_output_scales");
        if (key.beta != 0f) {
          dnnl_post_ops ops = new dnnl_post_ops();
          check(dnnl_post_ops_create(ops), "post_ops_create");
          check(dnnl_post_ops_append_sum(ops, key.beta), "post_ops_append_sum");
          check(dnnl_primitive_attr_set_post_ops(attr, ops), "set_post_ops");
          dnnl_post_ops_destroy(ops);
        }
        dnnl_matmul_desc_t md = new dnnl_matmul_desc_t();
        check(dnnl_matmul_desc_init(md, aBf16d, bBf16d, null, cF32d), "matmul_desc_init");
        dnnl_primitive_desc mm = new dnnl_primitive_desc();
        check(dnnl_primitive_desc_create(mm, new const_dnnl_op_desc_t(md), attr, ENGINE, null),
            "matmul primitive_desc_create " + key);
        impl = implInfo(mm);
        scratchBytes = Math.max(scratchBytes(mm), Math.max(scratchBytes(ra), scratchBytes(rb)));
        scratchpad = memory(desc(1, Math.max(1, scratchBytes), dnnl_u8, Math.max(1, scratchBytes), 1));
        reorderA = primitive(ra);
        reorderB = primitive(rb);
        matmul = primitive(mm);
      } finally {
        dnnl_primitive_attr_destroy(attr);
      }
      aF32 = memory(aF32d);
      aBf16 = memory(aBf16d);
      bF32 = memory(bF32d);
      bBf16 = memory(bBf16d);
      cF32 = memory(cF32d);
      if (LOGGED_IMPLS.add(impl)) log.info("bf16 GEMM: oneDNN matmul implementation {} (first seen on {})", impl, key);
    }

    void destroy() {
      for (dnnl_primitive p : new dnnl_primitive[] {reorderA, reorderB, matmul}) dnnl_primitive_destroy(p);
      for (dnnl_memory x : new dnnl_memory[] {aF32, aBf16, bF32, bBf16, cF32, scratchpad}) dnnl_memory_destroy(x);
    }
  }

  /** One thread's stream, plans and bf16/scratch buffers. */
  private static final class Local {
    final dnnl_stream stream = new dnnl_stream();
    final dnnl_exec_arg_t args = new dnnl_exec_arg_t(4);
    final Buffer aBuffer = new Buffer(), bBuffer = new Buffer(), scratch = new Buffer();
    final Map<Key, Plan> plans = new LinkedHashMap<>(16, 0.75f, true) {
      @Override
      protected boolean removeEldestEntry(Map.Entry<Key, Plan> eldest) {
        if (size() <= CACHED_PLANS) return false;
        eldest.getValue().destroy();
        return true;
      }
    };

    Local() {
      check(dnnl_stream_create(stream, ENGINE, dnnl_stream_default_flags), "stream_create");
    }

    Plan plan(Key key) {
      return plans.computeIfAbsent(key, Plan::new);
    }

    void execute(dnnl_primitive p, int arg0, dnnl_memory m0, int arg1, dnnl_memory m1, dnnl_memory scratchpad) {
      args.position(0).arg(arg0).memory(m0);
      args.position(1).arg(arg1).memory(m1);
      args.position(2).arg(DNNL_ARG_SCRATCHPAD).memory(scratchpad);
      check(dnnl_primitive_execute(p, stream, 3, args.position(0)), "reorder to bf16");
    }

    void execute(dnnl_primitive p, int arg0, dnnl_memory m0, int arg1, dnnl_memory m1, dnnl_memory scratchpad,
                 int arg3, dnnl_memory m3) {
      args.position(0).arg(arg0).memory(m0);
      args.position(1).arg(arg1).memory(m1);
      args.position(2).arg(DNNL_ARG_SCRATCHPAD).memory(scratchpad);
      args.position(3).arg(arg3).memory(m3);
      check(dnnl_primitive_execute(p, stream, 4, args.position(0)), "bf16 matmul");
    }
  }

  /** A native buffer that only grows (64-byte aligned: oneDNN's kernels like aligned operands). */
  private static final class Buffer {
    private BytePointer raw;
    private long aligned, size = -1;

    Pointer atLeast(long bytes) {
      if (bytes > size) {
        if (raw != null) raw.deallocate();
        raw = new BytePointer(bytes + 64);
        aligned = (raw.address() + 63) & ~63L;
        size = bytes;
      }
      return at(aligned);
    }
  }

  private static dnnl_memory_desc_t desc(long rows, long cols, int type, long rowStride, long colStride) {
    dnnl_memory_desc_t d = new dnnl_memory_desc_t();
    check(dnnl_memory_desc_init_by_strides(d, 2, new long[] {rows, cols}, type, new long[] {rowStride, colStride}),
        "memory_desc_init " + rows + "×" + cols + " strides " + rowStride + "," + colStride);
    return d;
  }

  private static dnnl_memory memory(dnnl_memory_desc_t d) {
    dnnl_memory m = new dnnl_memory();
    check(dnnl_memory_create(m, d, ENGINE, (Pointer) null), "memory_create");
    return m;
  }

  private static dnnl_primitive_desc reorderDesc(dnnl_memory_desc_t from, dnnl_memory_desc_t to, dnnl_primitive_attr attr) {
    dnnl_primitive_desc pd = new dnnl_primitive_desc();
    check(dnnl_reorder_primitive_desc_create(pd, from, ENGINE, to, ENGINE, attr), "reorder primitive_desc_create");
    return pd;
  }

  private static dnnl_primitive primitive(dnnl_primitive_desc pd) {
    dnnl_primitive p = new dnnl_primitive();
    try {
      check(dnnl_primitive_create(p, pd), "primitive_create");
    } finally {
      dnnl_primitive_desc_destroy(pd);
    }
    return p;
  }

  private static long scratchBytes(dnnl_primitive_desc pd) {
    return dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
  }

  private static String implInfo(dnnl_primitive_desc pd) {
    PointerPointer<BytePointer> out = new PointerPointer<>(1);
    check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, out), "query impl_info_str");
    return new BytePointer(out.get(0)).getString();
  }

  private static void setHandle(dnnl_memory m, Pointer p) {
    check(dnnl_memory_set_data_handle(m, p), "memory_set_data_handle");
  }

  /** The matrix's first element (a view's buffer already starts at the view's offset). */
  private static Pointer address(Mat x) {
    return at(x.array().data().addressPointer().address() + 4L * x.offset());
  }

  // a bare pointer at a raw address: a Pointer's position would be counted in bytes or elements depending on its class
  private static Pointer at(long raw) {
    return new Pointer() {
      {
        address = raw;
      }
    };
  }

  private static void check(int status, String what) {
    if (status != dnnl_success) throw new IllegalStateException("oneDNN " + what + " failed with status " + status);
  }
}
