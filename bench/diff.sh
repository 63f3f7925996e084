#!/bin/bash
# bench/diff.sh - end-to-end cost of an audit on a synthetic checkpoint of a
# few hundred MB (part of make bench; not a test).  It prints the wall time of
# quantize, hash and diff, and the ratio the diff issue sets as its bound: a
# diff where everything matches should cost no more than one quantization of
# the checkpoint plus hashing.
set -euo pipefail
qa=${QA_BIN:-./quantaudit}
work=${BENCH_WORK:-bench-work}
mkdir -p "$work"
ref=$work/model.safetensors
art=$work/model.Q4_K_M.gguf
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | awk '{printf "%.2f", $1 - $3}'; }

echo
echo "end to end: synthetic llama-style checkpoint (hidden 2048, ffn 5632, 4 layers, vocab 32000, bf16)"
$qa synth --arch llama --hidden 2048 --intermediate 5632 --heads 16 --kv-heads 4 --vocab 32000 \
	--layers 4 --seed 7 -o "$ref" >/dev/null
size=$(stat -c %s "$ref")
tq=$(secs $qa quantize "$ref" --recipe Q4_K_M -o "$art")
th=$(secs $qa hash "$art")
td=$(secs $qa diff "$ref" "$art")
tq1=$(secs $qa quantize "$ref" --recipe Q4_K_M -o "$art.j1" -j 1)
td1=$(secs $qa diff "$ref" "$art" -j 1)
rm -f "$art.j1"
awk -v s="$size" -v q="$tq" -v h="$th" -v d="$td" -v q1="$tq1" -v d1="$td1" 'BEGIN {
	printf "  reference: %.0f MB\n", s / 1e6
	printf "  quantize Q4_K_M: %6.2f s all cores (%.0f MB/s of reference), %6.2f s on one thread\n", q, s / q / 1e6, q1
	printf "  hash artifact:   %6.2f s\n", h
	printf "  diff:            %6.2f s all cores, %6.2f s on one thread\n", d, d1
	printf "  diff / (quantize + hash) = %.2f (bound: <= 1.00 plus noise)\n", d / (q + h)
}'
