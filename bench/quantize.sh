#!/bin/bash
# bench/quantize.sh - the whole process against llama-quantize (part of make
# bench; not a test).  On a synthetic qwen2-shaped checkpoint (about 196 M
# elements, bf16, converted to a BF16 GGUF by quantaudit itself) it runs, per
# type, `quantaudit quantize REF.BF16.gguf --type T -j 1` and
# `llama-quantize --pure REF.BF16.gguf OUT T 1`, checks that the two outputs
# are byte-identical, and prints llama-quantize's time over ours (above 1:
# ours is faster), in wall time and in CPU time (user + sys; the fairer
# figure on a loaded machine).  Skipped when llama-quantize is not built
# (LLAMA_CPP_BUILD, default ~/.cache/llama-cpp-ref/src/build/bin).
#
# BENCH_QUANT_TYPES overrides the types; BENCH_QUANT_LAYERS the layer count.
set -euo pipefail
qa=${QA_BIN:-./quantaudit}
work=${BENCH_WORK:-bench-work}
lqdir=${LLAMA_CPP_BUILD:-$HOME/.cache/llama-cpp-ref/src/build/bin}
lq=$lqdir/llama-quantize
types=${BENCH_QUANT_TYPES:-bf16 f16 q4_0 q5_1 q8_0 q3_K q4_K q5_K q6_K}
layers=${BENCH_QUANT_LAYERS:-4}

echo
echo "whole process: quantize --type T -j 1 against llama-quantize --pure ... T 1"
if [ ! -x "$lq" ]; then
	echo "  skipped: no llama-quantize in $lqdir (run ../shared/tools/build-llama-cpp or set LLAMA_CPP_BUILD)"
	exit 0
fi
mkdir -p "$work/qwen2"
ref=$work/qwen2/model.safetensors
gguf=$work/qwen2.BF16.gguf
$qa synth --arch qwen2 --hidden 896 --intermediate 4864 --heads 14 --kv-heads 2 --vocab 151936 \
	--layers "$layers" --tied --seed 3 -o "$ref" >/dev/null
$qa quantize "$ref" --type bf16 -o "$gguf" >/dev/null

# "wall user sys" seconds of one command, its output discarded
times_of() {
	local TIMEFORMAT='%R %U %S'
	{ time "$@" >/dev/null 2>&1; } 2>&1
}

echo "  reference: $(stat -c %s "$gguf" | awk '{printf "%.0f MB", $1 / 1e6}') bf16, qwen2 shape, $layers layers"
printf "  %-6s %9s %9s %9s %9s %8s %8s  %s\n" type "qa wall" "qa cpu" "lq wall" "lq cpu" wall× cpu× bytes
for t in $types; do
	a=$(times_of "$qa" quantize "$gguf" --type "$t" -j 1 -o "$work/qa.$t.gguf")
	b=$(times_of "$lq" --pure "$gguf" "$work/lq.$t.gguf" "$t" 1)
	same=DIFFER
	cmp -s "$work/qa.$t.gguf" "$work/lq.$t.gguf" && same=equal
	rm -f "$work/qa.$t.gguf" "$work/lq.$t.gguf"
	echo "$t $a $b $same" | awk '{
		qc = $3 + $4; lc = $6 + $7
		printf "  %-6s %8.2fs %8.2fs %8.2fs %8.2fs %7.2fx %7.2fx  %s\n", $1, $2, qc, $5, lc,
		       $5 / ($2 > 0 ? $2 : 0.01), lc / (qc > 0 ? qc : 0.01), $8
	}'
done
