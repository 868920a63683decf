#!/bin/sh
# llmos-generate reproduces llama2.c's greedy output for stories260K byte
# for byte, from the llama2.c checkpoint (+ tokenizer.bin) and from GGUF,
# with 1 and 2 threads.
set -eu
: "${LLMOS_BIN:?}" "${LLMOS_MODELS:?}"
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-greedy
out=$T
want="$LLMOS_MODELS/stories260K.greedy.txt"
for t in 1 2; do
  "$LLMOS_BIN/llmos-generate" --model "$LLMOS_MODELS/stories260K.bin" --tokenizer "$LLMOS_MODELS/tok512.bin" \
      -n 200 --temperature 0 --threads $t >"$out/bin.txt" 2>"$out/bin.err"
  cmp "$out/bin.txt" "$want" || { echo "FAIL: .bin output differs (threads $t)"; diff "$out/bin.txt" "$want" | head; exit 1; }
  grep -q 'decode .* tok/s' "$out/bin.err" || { echo "FAIL: no summary line"; cat "$out/bin.err"; exit 1; }
  "$LLMOS_BIN/llmos-generate" --model "$LLMOS_MODELS/stories260K.gguf" -n 200 --temperature 0 --threads $t \
      >"$out/gguf.txt" 2>"$out/gguf.err"
  cmp "$out/gguf.txt" "$want" || { echo "FAIL: .gguf output differs (threads $t)"; diff "$out/gguf.txt" "$want" | head; exit 1; }
done
# A bare file name is found through LLMOS_MODELS.
(cd "$out" && "$LLMOS_BIN/llmos-generate" --model stories260K.gguf -n 200 --temperature 0 >"$out/bare.txt" 2>/dev/null)
cmp "$out/bare.txt" "$want" || { echo "FAIL: bare name"; exit 1; }
# Same seed, same text; a bad file is an error message, not a crash.
a=$("$LLMOS_BIN/llmos-generate" --model "$LLMOS_MODELS/stories260K.gguf" -n 80 --temperature 0.9 --top-p 0.9 --seed 5 2>/dev/null)
b=$("$LLMOS_BIN/llmos-generate" --model "$LLMOS_MODELS/stories260K.gguf" -n 80 --temperature 0.9 --top-p 0.9 --seed 5 2>/dev/null)
[ "$a" = "$b" ] || { echo "FAIL: same seed gave different text"; exit 1; }
head -c 5000 "$LLMOS_MODELS/stories260K.gguf" >"$out/cut.gguf"
if "$LLMOS_BIN/llmos-generate" --model "$out/cut.gguf" -n 10 2>"$out/cut.err"; then echo "FAIL: truncated file accepted"; exit 1; fi
grep -q 'truncated\|past the end' "$out/cut.err" || { echo "FAIL: unclear error"; cat "$out/cut.err"; exit 1; }
# A stop string ends the text just before it, even across tokens; the prompt is echoed.
got=$("$LLMOS_BIN/llmos-generate" --model "$LLMOS_MODELS/stories260K.gguf" -n 200 --temperature 0 --stop "Lily" 2>/dev/null)
[ "$got" = "Once upon a time, there was a little girl named " ] || { echo "FAIL: stop string: '$got'"; exit 1; }
got=$("$LLMOS_BIN/llmos-generate" --model "$LLMOS_MODELS/stories260K.gguf" -n 200 --temperature 0 \
      --prompt "Once upon a time, Tom" --stop "." 2>/dev/null)
[ "$got" = "Once upon a time, Tom and Grandma went to the park" ] || { echo "FAIL: prompt + stop: '$got'"; exit 1; }
echo "greedy: 6 passed, 0 failed"
