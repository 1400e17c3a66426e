package dev.peftspark.spark.ml;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import org.apache.spark.ml.param.DoubleParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.param.Params;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * The Params both causal-LM stages share: input columns (one of three inputs), the generated-text column, the
 * decoding settings and the config keys ({@link ConfigParams#forCausalLm}).
 *
 * <p>Which input: {@code inputIdsCol} set → tokenized ids (and {@code labelsCol}, -100 for no loss); else
 * {@code promptCol} set → instruction records ({@code promptCol} + {@code responseCol}, the prompt put into
 * data.template, loss on the response only); else {@code textCol} → plain-text documents (every token a target).
 * For generation the prompt is, in the same order: the ids as given; BOS + template(prompt); BOS + text.
 */
final class LmStageParams implements Serializable {
  /** The three shapes of causal-LM input (data.lm_format's values). */
  enum Input { TEXT, INSTRUCTION, TOKENIZED }

  final Param<String> textCol, promptCol, responseCol, inputIdsCol, labelsCol, generatedCol;
  final IntParam maxNewTokens;
  final DoubleParam temperature, topP;
  final LongParam seed;
  final ConfigParams config;

  LmStageParams(String uid) {
    textCol = new Param<>(uid, "textCol", "input column of plain-text documents (string); used when neither "
        + "inputIdsCol nor promptCol is set");
    promptCol = new Param<>(uid, "promptCol", "input column of instruction prompts (string), put into data.template; "
        + "empty (the default): the input is textCol");
    responseCol = new Param<>(uid, "responseCol", "input column of the responses to promptCol (string; for fit only): "
        + "the only tokens with loss");
    inputIdsCol = new Param<>(uid, "inputIdsCol", "input column of token ids (array<int>), taken as they are; "
        + "empty (the default): text or prompts are tokenized");
    labelsCol = new Param<>(uid, "labelsCol", "input column of labels aligned with inputIdsCol (array<int>, -100: "
        + "no loss; for fit only); empty (the default): every token is a target");
    generatedCol = new Param<>(uid, "generatedCol", "output column: the generated continuation (string, the prompt "
        + "not repeated; null for a null or blank prompt)");
    maxNewTokens = new IntParam(uid, "maxNewTokens", "tokens to generate at most per row (stops earlier at the end "
        + "of text)", ParamValidators.gtEq(0));
    temperature = new DoubleParam(uid, "temperature", "sampling temperature (finite, >= 0); 0: greedy (argmax)",
        ParamValidators.inRange(0, Double.MAX_VALUE));
    topP = new DoubleParam(uid, "topP", "nucleus sampling: draw from the most likely tokens whose probabilities "
        + "reach topP (1: all); ignored when greedy", ParamValidators.inRange(0, 1, false, true));
    seed = new LongParam(uid, "seed", "sampling seed; each row draws from seed mixed with a hash of its prompt's "
        + "token ids, so a row's text does not depend on partitioning or row order");
    config = ConfigParams.forCausalLm(uid);
  }

  Param<?>[] all() {
    List<Param<?>> out = new ArrayList<>(List.of(textCol, promptCol, responseCol, inputIdsCol, labelsCol,
        generatedCol, maxNewTokens, temperature, topP, seed));
    out.addAll(config.byKey().values());
    return out.stream().sorted(Comparator.comparing(Param::name)).toArray(Param<?>[]::new);
  }

  @SuppressWarnings("rawtypes")
  void setDefaults(BiConsumer<Param, Object> setDefault) {
    setDefault.accept(textCol, JobConfigLoader.DEFAULTS.data().textField());
    setDefault.accept(promptCol, "");
    setDefault.accept(responseCol, JobConfigLoader.DEFAULTS.data().responseField());
    setDefault.accept(inputIdsCol, "");
    setDefault.accept(labelsCol, "");
    setDefault.accept(generatedCol, "generated");
    setDefault.accept(maxNewTokens, 32);
    setDefault.accept(temperature, 0.0);
    setDefault.accept(topP, 1.0);
    setDefault.accept(seed, 0L);
    config.setDefaults(setDefault);
  }

  /** The column params for a job config's data section (lm_format and its fields). */
  @SuppressWarnings({"unchecked", "rawtypes"})
  void setColumns(JobConfig cfg, BiConsumer<Param, Object> set) {
    var d = cfg.data();
    set.accept(textCol, d.textField());
    set.accept(responseCol, d.responseField());
    set.accept(promptCol, d.lmFormat().equals("instruction") ? d.promptField() : "");
    set.accept(inputIdsCol, d.lmFormat().equals("tokenized") ? "input_ids" : "");
    set.accept(labelsCol, d.lmFormat().equals("tokenized") ? "labels" : "");
  }

  Input input(String stage, Params p) {
    boolean ids = !p.$(inputIdsCol).isEmpty(), prompt = !p.$(promptCol).isEmpty();
    if (ids && prompt) {
      throw new IllegalArgumentException(stage + ": params inputIdsCol ('" + p.$(inputIdsCol) + "') and promptCol ('"
          + p.$(promptCol) + "') are both set; set one (token ids, or instruction prompts)");
    }
    return ids ? Input.TOKENIZED : prompt ? Input.INSTRUCTION : Input.TEXT;
  }

  /** Checks the input columns (those of fit when {@code forFit}) and returns the schema with generatedCol added. */
  StructType check(String stage, StructType schema, Params p, boolean forFit) {
    switch (input(stage, p)) {
      case TEXT -> StageParams.require(stage, schema, "textCol", p.$(textCol), "plain-text documents (string)",
          StageParams::isString);
      case INSTRUCTION -> {
        StageParams.require(stage, schema, "promptCol", p.$(promptCol), "the prompts (string)", StageParams::isString);
        if (forFit) StageParams.require(stage, schema, "responseCol", p.$(responseCol), "the responses (string)",
            StageParams::isString);
      }
      case TOKENIZED -> {
        StageParams.require(stage, schema, "inputIdsCol", p.$(inputIdsCol), IDS, LmStageParams::isIds);
        if (forFit && !p.$(labelsCol).isEmpty())
          StageParams.require(stage, schema, "labelsCol", p.$(labelsCol), "labels aligned with the ids (array<int>, "
              + "-100: no loss)", LmStageParams::isIds);
      }
    }
    String out = p.$(generatedCol);
    if (out == null || out.isEmpty()) {
      throw new IllegalArgumentException(stage + ": param generatedCol is empty; name the generated-text column");
    }
    StageParams.requireAbsent(stage, schema, "generatedCol", out);
    return schema.add(out, DataTypes.StringType, true);
  }

  static final String IDS = "token ids (array<int>)";

  static boolean isIds(DataType t) {
    return t instanceof ArrayType a && (a.elementType().equals(DataTypes.IntegerType)
        || a.elementType().equals(DataTypes.LongType) || a.elementType().equals(DataTypes.ShortType));
  }

  /** The column index of each input the stage reads (-1: unused). */
  record Columns(Input input, int text, int prompt, int response, int ids, int labels) implements Serializable {
    static Columns of(String stage, StructType schema, LmStageParams sp, Params p, boolean forFit) {
      Input in = sp.input(stage, p);
      return new Columns(in,
          in == Input.TEXT ? schema.fieldIndex(p.$(sp.textCol)) : -1,
          in == Input.INSTRUCTION ? schema.fieldIndex(p.$(sp.promptCol)) : -1,
          in == Input.INSTRUCTION && forFit ? schema.fieldIndex(p.$(sp.responseCol)) : -1,
          in == Input.TOKENIZED ? schema.fieldIndex(p.$(sp.inputIdsCol)) : -1,
          in == Input.TOKENIZED && forFit && !p.$(sp.labelsCol).isEmpty() ? schema.fieldIndex(p.$(sp.labelsCol)) : -1);
    }

    /** The column of the prompt / document / ids, for messages. */
    String describe(StructType schema) {
      int i = input == Input.TEXT ? text : input == Input.INSTRUCTION ? prompt : ids;
      return "'" + schema.fieldNames()[i] + "'";
    }
  }
}
