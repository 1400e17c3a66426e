package dev.peftspark.core.train;

import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.model.TinyBert;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.LoraConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each PEFT method learns TrainerTest's synthetic task (label = does token 5 occur) on a tiny random BERT. */
class MethodsTrainingTest {
  @ParameterizedTest
  @ValueSource(strings = {"qlora", "ia3", "dora"})
  void lossFalls(String method) {
    BertConfig c = TinyBert.config();
    boolean dora = method.equals("dora");
    var lora = new LoraConfig(4, 8, 0.1, List.of("query", "value"), false, "none", false, dora);
    Method m = dora ? Method.LORA : Method.parse(method);
    PeftClassifier model = PeftClassifier.create(m, lora, Ia3Config.bertDefaults(), c, TinyBert.weights(c, 3), 2,
        Pooling.Mode.MEAN, DataType.FLOAT, 42);
    List<TokenBatch> batches = TrainerTest.data(160, 16, 1);
    double lr = m == Method.IA3 ? 5e-2 : 1e-2;   // scaling vectors move slowly: IA3 is usually run at higher rates
    double before = Trainer.evaluate(model, batches, 0).loss();
    new Trainer(model, TrainerTest.train(4, 16, 1, lr, 0), batches.size()).fit(e -> batches, new TrainListener() {});
    EvalResult after = Trainer.evaluate(model, TrainerTest.data(128, 16, 2), 0);
    assertTrue(after.loss() < before * 0.7, method + ": loss " + before + " -> " + after.loss());
    assertTrue(after.accuracy() > 0.75, method + ": held-out accuracy " + after.accuracy());
  }
}
