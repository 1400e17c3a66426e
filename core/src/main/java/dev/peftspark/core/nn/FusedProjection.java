package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Several linears that read the same input (LLaMA's q/k/v, gate/up) as ONE product {@code x·[W₁; W₂; …]ᵀ}, output
 * {@code [N, Σout]} with each layer's columns side by side: x is packed once, and the backward's dx is one product
 * from the concatenated output gradient. Possible when the base weights are adjacent rows of one buffer (frozen
 * ones {@link #pack packed} at model build, trainable ones by the {@link ParamSet}); adapters that only add a term
 * ({@link AdditiveAdapter}, LoRA) add it into their columns. Anything else (quantized, DoRA, IA3, mixed
 * trainability): {@link #of} returns null and callers run the layers one by one.
 */
public final class FusedProjection {
  private final List<LinearLayer> parts;
  private final List<Linear> bases;
  private final Gemm.Mat weights;       // [Σout, in]
  private final Gemm.Mat grads;         // [Σout, in], null when the weights are frozen
  private final int in, total;
  private INDArray input;               // [N, in], kept for the weight gradients

  private FusedProjection(List<LinearLayer> parts, List<Linear> bases, Gemm.Mat weights, Gemm.Mat grads, int in, int total) {
    this.parts = parts;
    this.bases = bases;
    this.weights = weights;
    this.grads = grads;
    this.in = in;
    this.total = total;
  }

  /** {@code -Dpeft.fuse.projections=false} runs every linear on its own (A/B runs on the same build). */
  static final boolean ENABLED = !"false".equals(System.getProperty("peft.fuse.projections"));

  /** The fused form of {@code parts}, or null when they cannot be computed as one product (see above). */
  public static FusedProjection of(List<LinearLayer> parts) {
    if (!ENABLED) return null;
    List<Linear> bases = new ArrayList<>();
    for (LinearLayer l : parts) {
      if (!(l.base() instanceof Linear b)) return null;
      if (l != b && !(l instanceof AdditiveAdapter a && a.additive())) return null;
      bases.add(b);
    }
    Param first = bases.get(0).weight();
    boolean trainable = first.isTrainable();
    int in = (int) first.shape[1], total = 0;
    long at = first.blockOffset;
    for (Linear b : bases) {
      Param w = b.weight();
      if (w.valueBlock != first.valueBlock || w.valueBlock == null || w.isTrainable() != trainable || w.shape[1] != in
          || w.blockOffset != at || !viewAt(w.value, w.valueBlock, at) || (trainable && !viewAt(w.grad, w.gradBlock, at)))
        return null;
      at += w.length();
      total += (int) w.shape[0];
    }
    INDArray block = first.valueBlock;
    if (block.ordering() != 'c' || block.elementWiseStride() != 1 || block.dataType() != first.value.dataType()) return null;
    Gemm.Mat weights = new Gemm.Mat(block, first.blockOffset, total, in, in);
    Gemm.Mat grads = trainable ? new Gemm.Mat(first.gradBlock, first.blockOffset, total, in, in) : null;
    return new FusedProjection(List.copyOf(parts), bases, weights, grads, in, total);
  }

  /** Whether {@code v} still is the view of {@code block} at {@code offset} (not rebound since). */
  private static boolean viewAt(INDArray v, INDArray block, long offset) {
    if (v == null || block == null || v.ordering() != 'c' || v.elementWiseStride() != 1) return false;
    long size = block.dataType().width();
    return v.data().addressPointer().address() == block.data().addressPointer().address() + offset * size;
  }

  /**
   * Lays the frozen weights of plain linears {@code layers} out as adjacent rows of one new buffer (each weight
   * becomes a view of it; names and values unchanged), so that {@link #of} can fuse them. Leaves them alone when
   * any is not a plain frozen {@link Linear} (quantized, trainable: a ParamSet packs those) or shapes differ.
   */
  public static void pack(List<LinearLayer> layers) {
    List<Param> ws = new ArrayList<>();
    for (LinearLayer l : layers) {
      if (!(l instanceof Linear b) || b.weight().isTrainable()) return;
      ws.add(b.weight());
    }
    Param first = ws.get(0);
    long rows = 0;
    for (Param w : ws) {
      if (w.shape[1] != first.shape[1] || w.value.dataType() != first.value.dataType()) return;
      rows += w.shape[0];
    }
    INDArray block = Nd4j.createUninitialized(first.value.dataType(), new long[] {rows * first.shape[1]}, 'c');
    long at = 0;
    for (Param w : ws) {
      INDArray view = Nd4j.create(block.data(), w.shape, new long[] {w.shape[1], 1}, at, 'c', block.dataType());
      view.assign(w.value);
      w.value = view;
      w.valueBlock = block;
      w.blockOffset = at;
      at += w.length();
    }
  }

  /** {@code [N, Σout]}: each part's output in its columns, adapters' terms included. */
  public INDArray forward(INDArray x) {
    x = contiguous(x);
    long n = x.size(0);
    INDArray y = Nd4j.createUninitialized(x.dataType(), new long[] {n, total}, 'c');
    boolean biased = bases.stream().anyMatch(b -> b.bias() != null);
    if (biased) {   // y = 1·bᵀ + x·Wᵀ, as Linear does
      INDArray row = Nd4j.zeros(x.dataType(), 1, total);
      int col = 0;
      for (Linear b : bases) {
        if (b.bias() != null) row.get(NDArrayIndex.point(0), NDArrayIndex.interval(col, col + b.outFeatures())).assign(b.bias().value());
        col += b.outFeatures();
      }
      Gemm.gemm(Gemm.Mat.of(Nd4j.ones(x.dataType(), n, 1)), false, Gemm.Mat.of(row), false, Gemm.Mat.of(y), 1.0, 0.0);
    }
    Gemm.gemm(Gemm.Mat.of(x), false, weights, true, Gemm.Mat.of(y), 1.0, biased ? 1.0 : 0.0);
    int col = 0;
    for (LinearLayer l : parts) {
      if (l instanceof AdditiveAdapter a && l != l.base()) a.addForward(x, columns(y, col, l.outFeatures()));
      col += l.outFeatures();
    }
    input = x;
    return y;
  }

  /** Accumulates every part's gradients from {@code dy [N, Σout]}; dL/dx, or null when {@code needInputGrad} is false. */
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    dy = contiguous(dy);
    if (grads != null) Gemm.gemm(Gemm.Mat.of(dy), true, Gemm.Mat.of(input), false, grads, 1.0, 1.0);
    INDArray dx = needInputGrad ? Nd4j.createUninitialized(dy.dataType(), new long[] {dy.size(0), in}, 'c') : null;
    if (needInputGrad) Gemm.gemm(Gemm.Mat.of(dy), false, weights, false, Gemm.Mat.of(dx), 1.0, 0.0);
    int col = 0;
    for (int i = 0; i < parts.size(); i++) {
      LinearLayer l = parts.get(i);
      Param bias = bases.get(i).bias();
      if (bias != null && bias.isTrainable())
        bias.grad.addi(dy.get(NDArrayIndex.all(), NDArrayIndex.interval(col, col + l.outFeatures())).sum(0));
      if (l instanceof AdditiveAdapter a && l != l.base()) {
        INDArray d = a.adapterBackward(columns(dy, col, l.outFeatures()), needInputGrad);
        if (needInputGrad) dx.addi(d);
      }
      col += l.outFeatures();
    }
    input = null;
    return dx;
  }

  /** Column blocks of {@code widths} of {@code y [N, Σwidths]} as new contiguous arrays (bulk row copies for FLOAT). */
  public static INDArray[] split(INDArray y, int... widths) {
    y = contiguous(y);
    int n = (int) y.size(0), ld = (int) y.size(1);
    INDArray[] out = new INDArray[widths.length];
    int col = 0;
    for (int p = 0; p < widths.length; p++) {
      int w = widths[p];
      if (y.dataType() == DataType.FLOAT) {
        out[p] = Nd4j.createUninitialized(DataType.FLOAT, new long[] {n, w}, 'c');
        FloatBuffer src = floats(y), dst = floats(out[p]);
        for (int r = 0; r < n; r++) dst.put(r * w, src, r * ld + col, w);
      } else {
        out[p] = y.get(NDArrayIndex.all(), NDArrayIndex.interval(col, col + w)).dup('c');
      }
      col += w;
    }
    if (col != ld) throw new IllegalArgumentException("column blocks " + java.util.Arrays.toString(widths) + " do not add up to " + ld);
    return out;
  }

  /** {@code [a | b | …]} side by side, rows of equal count (bulk row copies for FLOAT). */
  public static INDArray join(INDArray... parts) {
    if (parts[0].dataType() != DataType.FLOAT) return Nd4j.hstack(parts);
    int n = (int) parts[0].size(0), ld = 0;
    for (INDArray p : parts) ld += (int) p.size(1);
    INDArray out = Nd4j.createUninitialized(DataType.FLOAT, new long[] {n, ld}, 'c');
    FloatBuffer dst = floats(out);
    int col = 0;
    for (INDArray p : parts) {
      INDArray c = contiguous(p);
      int w = (int) c.size(1);
      FloatBuffer src = floats(c);
      for (int r = 0; r < n; r++) dst.put(r * ld + col, src, r * w, w);
      col += w;
    }
    return out;
  }

  /** A view of a contiguous FLOAT array's values indexed from 0. */
  private static FloatBuffer floats(INDArray a) {
    return a.data().asNioFloat().position((int) a.offset()).slice();
  }

  private Gemm.Mat columns(INDArray y, int col, int width) {
    return new Gemm.Mat(y, col, (int) y.size(0), width, total);
  }

  private static INDArray contiguous(INDArray a) {
    return a.ordering() == 'c' && a.elementWiseStride() == 1 && a.stride(0) == a.size(1) ? a : a.dup('c');
  }
}
