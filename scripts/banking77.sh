#!/bin/sh
# banking77.sh — the BANKING77 intent-classifier recipe, from scratch:
#   1. domain-adaptive pre-training of stories260K (next-token loss) on the
#      training texts (the labels are not used; 10% held out for validation);
#   2. full fine-tuning of the adapted model with the pooled classification
#      head, two seeds, best checkpoint by validation accuracy (the
#      validation split comes from train.csv only);
#   3. the two fine-tuned classifiers ensembled by averaged probabilities on
#      test.csv.  Ends with "accuracy 0.xxxx".
# Env: LLMOS_BIN (build/bin), LLMOS_DATA, LLMOS_MODELS, OUT (a fresh folder),
#      THREADS (1).
set -eu
BIN=${LLMOS_BIN:-build/bin}
DATA=${LLMOS_DATA:-../shared/data}
MODELS=${LLMOS_MODELS:-../shared/models}
OUT=${OUT:-$(mktemp -d /tmp/banking77.XXXXXX)}
THREADS=${THREADS:-1}
mkdir -p "$OUT"
start=$(date +%s)
common="--tokenizer $MODELS/tok512.bin --train $DATA/banking77/train.csv --labels $DATA/banking77/categories.json
        --batch 32 --micro 32 --seq 64 --threads $THREADS --val-frac 0.1 --split-seed 1 --quiet"

"$BIN/llmos-train" --model "$MODELS/stories260K.bin" $common --mode pretrain --out "$OUT/dapt" \
    --epochs 2 --lr 2e-3 --min-lr 2e-4 --warmup 50 --eval-every 250 --save-every 1000
"$BIN/llmos-ckpt" export "$OUT/dapt" "$OUT/dapt.bin"

for seed in 1 2; do
    "$BIN/llmos-train" --model "$OUT/dapt.bin" $common --mode full --out "$OUT/full$seed" --seed "$seed" \
        --epochs 10 --lr 3e-3 --min-lr 1e-4 --warmup 100 --dropout 0.1 --wd 0.01 \
        --eval-every 200 --save-every 1000 --patience 6
done
train_s=$(( $(date +%s) - start ))
"$BIN/llmos-eval" --ckpt "$OUT/full1" --ckpt "$OUT/full2" --ensemble avg \
    --data "$DATA/banking77/test.csv" --predictions "$OUT/predictions.jsonl" --confused 5
echo "training wall time ${train_s} s (output in $OUT)"
"$BIN/llmos-eval" --ckpt "$OUT/full1" --ckpt "$OUT/full2" --ensemble avg \
    --data "$DATA/banking77/test.csv" | tail -1
