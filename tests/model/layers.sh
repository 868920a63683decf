#!/usr/bin/env bash
# tests/model/layers.sh — model/ is built in one direction: a file calls only
# files of lower layers (the table below is model/builder.h's, and the
# serving core's from model/serve.h), so no two files call each other.
# Checked on the built static libraries with nm: for every symbol a member
# (one .c file) uses that another member of the same library defines, the
# definer's layer must be lower.  A member missing from the table fails
# too, so a new file has to be placed.
#
#   layers.sh LIBLLMOS_MODEL.a [LIBLLMOS_SERVE.a]
set -euo pipefail
declare -A layer=(
  [kernels]=0 [blis_select]=0 [omp_env]=0 [sample]=0 [tokenizer]=0 [q8_scalar]=0
  [q8_avx2]=1 [q8_avx512]=1
  [q8]=2
  [builder]=3
  [load_llama2c]=4 [gguf]=4 [q8_bridge]=4 [prompt]=4
  [forward]=5
  [model]=6
  # llmos_serve (model/serve.h): the plan codec, the classifier checkpoint, the core
  [serve_plan]=0 [serve_cls]=0
  [serve_req]=1
  [serve]=2
)
fail=0
for lib in "$@"; do
  [ -f "$lib" ] || { echo "layers: no library $lib" >&2; exit 1; }
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  # member symbol (defined, global) / member symbol (undefined)
  nm -A -g --defined-only "$lib" 2>/dev/null | awk -F: '{n=split($3,f," "); print $2, f[n]}' | sort -u >"$tmp/def"
  nm -A -u "$lib" 2>/dev/null | awk -F: '{n=split($3,f," "); print $2, f[n]}' | sort -u >"$tmp/use"
  for m in $(cut -d' ' -f1 "$tmp/def" "$tmp/use" | sort -u); do
    b=${m%.c.o}
    if [ -z "${layer[$b]+x}" ]; then echo "layers: $lib: $m has no layer in tests/model/layers.sh" >&2; fail=1; fi
  done
  [ $fail = 0 ] || exit 1
  # join uses with definitions on the symbol
  before=$fail; fail=0
  sort -k2 "$tmp/def" >"$tmp/def2"; sort -k2 "$tmp/use" >"$tmp/use2"
  while read -r sym user definer; do
    [ "$user" = "$definer" ] && continue
    u=${user%.c.o} d=${definer%.c.o}
    if [ "${layer[$d]}" -ge "${layer[$u]}" ]; then
      echo "layers: $lib: $user (layer ${layer[$u]}) calls $sym of $definer (layer ${layer[$d]}): not a lower layer" >&2
      fail=1
    fi
  done < <(join -1 2 -2 2 -o 0,1.1,2.1 "$tmp/use2" "$tmp/def2")
  n=$(join -1 2 -2 2 "$tmp/use2" "$tmp/def2" | wc -l)
  [ $fail = 1 ] || echo "layers: $lib: $n uses of another file's symbols, all downward"
  [ $before = 0 ] || fail=1
  rm -rf "$tmp"; trap - EXIT
done
exit $fail
