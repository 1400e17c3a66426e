#!/usr/bin/env bash
# Issue 5's quality tables: MiniLM on the sentiment task (train amazon+yelp, test imdb) for every method, with the
# full training set and with 100 training examples (averaged over 3 seeds). Prints two markdown tables.
#   bench/methods-table.sh [OUT_DIR]            (needs the demo data: PEFT_SPARK_DATA_CACHE or npm)
# Accuracy does not depend on machine load; "CPU s" is user+sys CPU seconds of the whole run (robust to other load),
# "wall" is elapsed time (only meaningful on a quiet machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${1:-/tmp/methods-table}"
mkdir -p "$OUT"
METHODS="${METHODS:-lora qlora dora ia3 prompt_tuning prefix_tuning head full}"
FULL_METHODS="${FULL_METHODS:-$METHODS}"   # methods run on the full training set
SEEDS="${SEEDS:-1 2 3}"

# per-method settings: learning rate and options (the rest is conf/minilm-sentiment-lora.yaml); sets OPTS
opts() {
  case "$1" in
    lora)          OPTS=(--set method=lora --set train.lr=1e-3) ;;
    qlora)         OPTS=(--set method=qlora --set train.lr=1e-3) ;;
    dora)          OPTS=(--set method=lora --set lora.use_dora=true --set train.lr=1e-3) ;;
    ia3)           OPTS=(--set method=ia3 --set train.lr=3e-3) ;;
    prompt_tuning) OPTS=(--set method=prompt_tuning --set prompt.num_virtual_tokens=20 --set prompt.init=text
                         --set "prompt.init_text=Is this review positive or negative?" --set train.lr=1e-2) ;;
    prefix_tuning) OPTS=(--set method=prefix_tuning --set prompt.num_virtual_tokens=20 --set train.lr=1e-2) ;;
    head)          OPTS=(--set method=head --set train.lr=1e-3) ;;
    full)          OPTS=(--set method=full --set train.lr=5e-5) ;;
    *) echo "unknown method $1" >&2; exit 2 ;;
  esac
}

# 100 training examples drawn with a fixed seed from amazon+yelp (JSONL, same fields as the demo files)
subset() {
  local seed=$1 file="$OUT/train-100-seed$1.jsonl"
  if [ ! -f "$file" ]; then
    python3 - "$seed" "$file" <<'PY'
import json, os, random, sys, tarfile
seed, out = int(sys.argv[1]), sys.argv[2]
cache = os.environ.get("PEFT_SPARK_DATA_CACHE", "../shared/data-cache")
rows = []
with tarfile.open(os.path.join(cache, "sentiment-5.0.2.tgz")) as t:
    for name in ("amazon", "yelp"):
        rows += json.load(t.extractfile(f"package/test/fixtures/{name}.json"))
random.Random(seed).shuffle(rows)
with open(out, "w") as f:
    for r in rows[:100]: f.write(json.dumps(r) + "\n")
PY
  fi
  echo "$file"
}

run() {   # run NAME EXTRA_ARGS... -> OUT/NAME/{eval.json,summary.json,time.txt}
  local name=$1; shift
  if [ ! -f "$OUT/$name/eval.json" ]; then
    rm -rf "$OUT/$name"
    /usr/bin/time -f "%e %U %S" -o "$OUT/$name.time" \
      bin/peft-spark train --config conf/minilm-sentiment-lora.yaml --set output_dir="$OUT/$name" --set runner=local "$@" \
      > "$OUT/$name.log" 2>&1 || { echo "run $name failed: see $OUT/$name.log" >&2; return 1; }
  fi
}

field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

echo "| method | trainable params | IMDB accuracy | wall | CPU s |"
echo "|---|---|---|---|---|"
for m in $FULL_METHODS; do
  opts "$m"
  run "full-$m" "${OPTS[@]}"
  read -r wall user sys < "$OUT/full-$m.time"
  printf "| %s | %s | %.3f | %.0f s | %.0f |\n" "$m" "$(field "$OUT/full-$m/summary.json" trainable_params)" \
    "$(field "$OUT/full-$m/eval.json" accuracy)" "$wall" "$(python3 -c "print($user+$sys)")"
done

echo
echo "| method (100 examples, 10 epochs) | accuracy seed 1 / 2 / 3 | mean |"
echo "|---|---|---|"
for m in $METHODS; do
  accs=()
  for s in $SEEDS; do
    data="$(subset "$s")"
    opts "$m"
    run "small-$m-seed$s" "${OPTS[@]}" --set "data.train=[$data]" --set train.epochs=10 --set train.batch_size=16 \
      --set train.seed="$s"
    accs+=("$(field "$OUT/small-$m-seed$s/eval.json" accuracy)")
  done
  printf "| %s | %s | %.3f |\n" "$m" "$(IFS=/; echo "${accs[*]}")" \
    "$(python3 -c "import sys; a=[float(x) for x in sys.argv[1:]]; print(sum(a)/len(a))" "${accs[@]}")"
done
