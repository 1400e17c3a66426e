#!/usr/bin/env bash
# Issue 4's forgetting demo, end to end: pretrain the small LLaMA-style base on Brown without `learned`
# (conf/brown-pretrain.yaml), adapt it to `learned` with LoRA and with full fine-tuning, and measure perplexity on
# learned's test split (learning) and news' test split (forgetting) before and after. Prints a markdown table.
#   bench/forgetting-demo.sh [RUNS_DIR]      (default runs/; needs the demo data: PEFT_SPARK_DATA_CACHE or npm)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS="${1:-runs}"
LEARNED="data.test=['demo:brown?genres=learned&split=test']"
NEWS="data.test=['demo:brown?genres=news&split=test']"
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
timed() {   # timed NAME CMD... : runs once, keeps its wall seconds in RUNS/NAME.seconds
  local name=$1; shift
  if [ ! -f "$RUNS/$name.seconds" ]; then
    local t0; t0=$(date +%s)
    "$@" > "$RUNS/$name.log" 2>&1 || { echo "$name failed: see $RUNS/$name.log" >&2; exit 1; }
    echo $(( $(date +%s) - t0 )) > "$RUNS/$name.seconds"
  fi
}
mkdir -p "$RUNS"
timed pretrain bin/peft-spark train --config conf/brown-pretrain.yaml --set output_dir="$RUNS/brown-base"
lm() { echo "--set model=$RUNS/brown-base --set output_dir=$RUNS/$1"; }
# shellcheck disable=SC2046
timed base-learned bin/peft-spark eval --config conf/brown-learned-lora.yaml $(lm brown-base-learned) --set "$LEARNED"
# shellcheck disable=SC2046
timed base-news bin/peft-spark eval --config conf/brown-learned-lora.yaml $(lm brown-base-news) --set "$NEWS"
for m in lora full; do
  # shellcheck disable=SC2046
  timed "$m" bin/peft-spark train --config "conf/brown-learned-$m.yaml" $(lm "brown-learned-$m")
  # shellcheck disable=SC2046
  timed "$m-news" bin/peft-spark eval --config "conf/brown-learned-$m.yaml" --adapter "$RUNS/brown-learned-$m" \
    $(lm "brown-learned-$m-news") --set "$NEWS"
done
ppl() { printf "%.1f" "$(field "$1/eval.json" perplexity)"; }
echo "| model | trainable params | adaptation time | ppl learned (test) | ppl news (test) |"
echo "|---|---|---|---|---|"
echo "| base (pretrained $(cat "$RUNS/pretrain.seconds") s) | - | - | $(ppl "$RUNS/brown-base-learned") | $(ppl "$RUNS/brown-base-news") |"
for m in lora full; do
  echo "| $m on learned | $(field "$RUNS/brown-learned-$m/summary.json" trainable_params) | $(cat "$RUNS/$m.seconds") s |" \
       "$(ppl "$RUNS/brown-learned-$m") | $(ppl "$RUNS/brown-learned-$m-news") |"
done
