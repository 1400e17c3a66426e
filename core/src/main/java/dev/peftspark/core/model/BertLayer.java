package dev.peftspark.core.model;

import dev.peftspark.core.nn.Gelu;
import dev.peftspark.core.nn.LayerNorm;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.SelfAttention;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/** One post-LN BERT block: {@code h1 = LN1(x + Attn(x)); y = LN2(h1 + Out(GELU(Inter(h1))))}. */
public final class BertLayer {
  private final SelfAttention attention;
  private final LayerNorm attentionNorm;   // attention.output.LayerNorm
  private LinearLayer intermediate;        // intermediate.dense [I, H]
  private final Gelu gelu = new Gelu();
  private LinearLayer output;              // output.dense [H, I]
  private final LayerNorm outputNorm;      // output.LayerNorm

  public BertLayer(SelfAttention attention, LayerNorm attentionNorm, LinearLayer intermediate, LinearLayer output,
                   LayerNorm outputNorm) {
    this.attention = attention;
    this.attentionNorm = attentionNorm;
    this.intermediate = intermediate;
    this.output = output;
    this.outputNorm = outputNorm;
  }

  public INDArray forward(INDArray x, INDArray maskBias, int batch, int seq) {
    INDArray h1 = attentionNorm.forward(attention.forward(x, maskBias, batch, seq).addi(x));
    INDArray o = output.forward(gelu.forward(intermediate.forward(h1)));
    return outputNorm.forward(o.addi(h1));
  }

  public INDArray backward(INDArray dy, boolean needInputGrad) {
    INDArray dsum2 = outputNorm.backward(dy);                                   // d(o + h1)
    INDArray dinter = gelu.backward(output.backward(dsum2, true));
    INDArray dh1 = intermediate.backward(dinter, true).addi(dsum2);
    INDArray dsum1 = attentionNorm.backward(dh1);                               // d(attn + x)
    INDArray dx = attention.backward(dsum1, needInputGrad);
    return needInputGrad ? dx.addi(dsum1) : null;
  }

  public void mapLinears(UnaryOperator<LinearLayer> f) {
    attention.mapLinears(f);
    intermediate = f.apply(intermediate);
    output = f.apply(output);
  }

  public List<LinearLayer> linears() {
    List<LinearLayer> all = new ArrayList<>(attention.linears());
    all.add(intermediate);
    all.add(output);
    return all;
  }

  public List<Param> params() {
    List<Param> all = new ArrayList<>();
    for (LinearLayer l : linears()) all.addAll(l.params());
    all.addAll(List.of(attentionNorm.gamma(), attentionNorm.beta(), outputNorm.gamma(), outputNorm.beta()));
    return all;
  }

  public SelfAttention attention() { return attention; }

  /** Something in this block trains: a parameter of its own or its slice of a shared prefix. */
  public boolean hasTrainable() {
    return attention.hasTrainablePrefix() || params().stream().anyMatch(Param::isTrainable);
  }
}
