package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A wrapper whose output is its base's plus a term of the input alone ({@code y = base(x) + Δ(x)}, e.g. LoRA), so
 * {@link FusedProjection} can compute the base products of several such layers as one and add each term into its
 * columns.
 */
public interface AdditiveAdapter extends LinearLayer {
  /** False when this layer's output is not of that form (DoRA rescales the base product). */
  boolean additive();

  /** {@code y += Δ(x)}, {@code y [N, out]} (perhaps a column range of a larger product); keeps what backward needs. */
  void addForward(INDArray x, Gemm.Mat y);

  /** Accumulates the adapter's gradients from {@code dy [N, out]}; returns dΔ/dx·dy, or null when not needed. */
  INDArray adapterBackward(Gemm.Mat dy, boolean needInputGrad);
}
