#!/bin/sh
# banking77.sh — the BANKING77 intent-classifier recipe, from scratch, in two
# parallel lanes of one single-threaded training process each.  Lane L (a, b):
#   1. domain-adaptive pre-training (DAPT) of stories260K (next-token loss)
#      on the training texts (labels unused, the validation split held out),
#      data-order seed 1 (lane a) or 2 (lane b), exported as dapt_L.bin;
#   2. two full fine-tunings of dapt_L.bin (mean pooling, dropout 0.1,
#      label smoothing 0.1, EPOCHS epochs), seeds 1+3 (a) and 2+4 (b), each
#      keeping its best checkpoint by validation accuracy.
# The validation split comes from train.csv only (--val-frac 0.1
# --split-seed 1); test.csv is read only by the final llmos-eval.  The four
# members are ensembled by averaged probabilities, reported first on the
# validation split, then on test.csv.  Ends with "accuracy 0.xxxx" (test).
# Env: LLMOS_BIN (build/bin), LLMOS_DATA, LLMOS_MODELS, OUT (a fresh folder),
#      THREADS (1 per process), EPOCHS (fine-tuning epochs per member, 4),
#      NICE (10: the machine is shared).
set -eu
BIN=${LLMOS_BIN:-build/bin}
DATA=${LLMOS_DATA:-../shared/data}
MODELS=${LLMOS_MODELS:-../shared/models}
OUT=${OUT:-$(mktemp -d /tmp/banking77.XXXXXX)}
THREADS=${THREADS:-1}
EPOCHS=${EPOCHS:-4}
NICE=${NICE:-10}
mkdir -p "$OUT"
start=$(date +%s)
common="--tokenizer $MODELS/tok512.bin --train $DATA/banking77/train.csv --labels $DATA/banking77/categories.json
        --batch 32 --micro 32 --seq 64 --threads $THREADS --val-frac 0.1 --split-seed 1 --quiet"

train() { nice -n "$NICE" "$BIN/llmos-train" $common "$@"; }
# member NAME MODEL ARGS...: one fine-tuned classifier in $OUT/NAME.
member() {
    name=$1 model=$2
    shift 2
    s=$(date +%s)
    train --model "$model" --out "$OUT/$name" --epochs "$EPOCHS" --lr 3e-3 --min-lr 1e-4 --warmup 100 \
        --dropout 0.1 --wd 0.01 --eval-every 200 --save-every 100000 "$@"
    echo "$name: $(( $(date +%s) - s )) s"
}

# lane L SEED1 SEED2: DAPT with data-order seed SEED1, then two members.
lane() {
    s=$(date +%s)
    train --model "$MODELS/stories260K.bin" --mode pretrain --out "$OUT/dapt_$1" --seed "$2" \
        --epochs 2 --lr 2e-3 --min-lr 2e-4 --warmup 50 --eval-every 250 --save-every 100000
    "$BIN/llmos-ckpt" export "$OUT/dapt_$1" "$OUT/dapt_$1.bin"
    echo "dapt_$1: $(( $(date +%s) - s )) s"
    member "full_$1$2" "$OUT/dapt_$1.bin" --mode full --pool mean --label-smoothing 0.1 --seed "$2"
    member "full_$1$3" "$OUT/dapt_$1.bin" --mode full --pool mean --label-smoothing 0.1 --seed "$3"
}

lane a 1 3 > "$OUT/lane_a.log" 2>&1 &
pa=$!
lane b 2 4 > "$OUT/lane_b.log" 2>&1 &
pb=$!
rc=0
wait "$pa" || rc=1
wait "$pb" || rc=1
cat "$OUT/lane_a.log" "$OUT/lane_b.log" | grep -E '^[a-z_0-9]+: [0-9]+ s$' || true
if [ "$rc" != 0 ]; then
    echo "banking77.sh: a lane failed; logs in $OUT/lane_a.log, $OUT/lane_b.log" >&2
    exit 1
fi
train_s=$(( $(date +%s) - start ))

members="--ckpt $OUT/full_a1 --ckpt $OUT/full_b2 --ckpt $OUT/full_a3 --ckpt $OUT/full_b4"
echo "validation split (train.csv, --val-frac 0.1 --split-seed 1):"
"$BIN/llmos-eval" $members --ensemble avg --data "$DATA/banking77/train.csv" --val-frac 0.1 --split-seed 1 \
    | grep -E '^(member|macro-F1|accuracy)' | sed 's/^/  val /'
echo "training wall time ${train_s} s (output in $OUT)"
"$BIN/llmos-eval" $members --ensemble avg --data "$DATA/banking77/test.csv" \
    --predictions "$OUT/predictions.jsonl" --confused 5 > "$OUT/test_eval.txt"
grep -E '^(member|most|  |macro-F1|micro-F1)' "$OUT/test_eval.txt" | grep -v '^class'
tail -1 "$OUT/test_eval.txt"
