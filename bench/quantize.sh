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
# BENCH_QUANT_TYPES overrides the types; BENCH_QUANT_LAYERS the layer count;
# BENCH_QUANT_KTYPES the k-quants of the second table (empty: none).
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

# One table: every type of $2.. on the BF16 GGUF $1.
compare_types() {
	local gguf=$1 t a b same
	shift
	printf "  %-6s %9s %9s %9s %9s %8s %8s  %s\n" type "qa wall" "qa cpu" "lq wall" "lq cpu" wall× cpu× bytes
	for t in "$@"; do
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
}

echo "  reference: $(stat -c %s "$gguf" | awk '{printf "%.0f MB", $1 / 1e6}') bf16, qwen2 shape, $layers layers"
# shellcheck disable=SC2086
compare_types "$gguf" $types

# The shape above is the issue's, but its rows are 896 wide: every k-quant
# tensor except ffn_down falls back to a legacy type on both sides.  So the
# k-quants again, on a qwen2 shape whose every row is a multiple of 256.
ktypes=${BENCH_QUANT_KTYPES:-q3_K q4_K q5_K q6_K}
if [ -n "$ktypes" ]; then
	mkdir -p "$work/qwen2k"
	kref=$work/qwen2k/model.safetensors
	kgguf=$work/qwen2k.BF16.gguf
	$qa synth --arch qwen2 --hidden 1024 --intermediate 2816 --heads 16 --kv-heads 2 --vocab 32768 \
		--layers 2 --tied --seed 5 -o "$kref" >/dev/null
	$qa quantize "$kref" --type bf16 -o "$kgguf" >/dev/null
	echo
	echo "  k-quants: $(stat -c %s "$kgguf" | awk '{printf "%.0f MB", $1 / 1e6}') bf16, qwen2 shape with rows of 1024 and 2816, 2 layers"
	# shellcheck disable=SC2086
	compare_types "$kgguf" $ktypes
fi
