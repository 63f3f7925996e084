#!/bin/bash
# bench/pipeline.sh - the diff pipeline against what a user would otherwise run
# (part of make bench; not a test).  On a Qwen2.5-1.5B-shaped checkpoint
# (hidden 1536, ffn 8960, 12/2 heads, vocab 151936, tied, bf16, 8 layers:
# 1.2 GB) it prints
#   - diff's wall and CPU time against llama-quantize re-quantizing the same
#     BF16 GGUF to Q4_K_M on the same threads (issue 13 bound: wall <= 0.25x);
#   - diff's peak RSS as /usr/bin/time reports it, mapped file pages included
#     (bound: <= 1 GiB);
#   - the peak RSS growth when the vocabulary doubles (bound: <= 10 %).
# llama-quantize is taken from $LLAMA_QUANTIZE, else from
# ~/.cache/llama-cpp-ref/src/build/bin; without it the artifact is made by
# quantaudit itself and the time ratio is skipped.  BENCH_LAYERS (default 8)
# and BENCH_THREADS (default 2) change the case.
set -euo pipefail
qa=${QA_BIN:-./quantaudit}
work=${BENCH_WORK:-bench-work}/pipeline
layers=${BENCH_LAYERS:-8}
threads=${BENCH_THREADS:-2}
lq=${LLAMA_QUANTIZE:-$HOME/.cache/llama-cpp-ref/src/build/bin/llama-quantize}
[ -x "$lq" ] || lq=
mkdir -p "$work"

# timed OUT CMD...: "wall user sys maxrss_kib" of CMD into the file OUT
timed() {
	local out=$1
	shift
	/usr/bin/time -f '%e %U %S %M' -o "$out" "$@" >/dev/null 2>"$out.err" || [ $? -le 1 ]
}

# make_case DIR VOCAB: DIR/model.BF16.gguf and DIR/model.Q4_K_M.gguf
make_case() {
	local dir=$1 vocab=$2
	mkdir -p "$dir"
	[ -s "$dir/model.Q4_K_M.gguf" ] && return 0
	$qa synth --arch qwen2 --hidden 1536 --intermediate 8960 --heads 12 --kv-heads 2 \
		--vocab "$vocab" --layers "$layers" --tied --seed 1 -o "$dir/model.safetensors" >/dev/null
	$qa quantize "$dir/model.safetensors" --type bf16 -o "$dir/model.BF16.gguf" >/dev/null
	rm -f "$dir/model.safetensors"
	if [ -n "$lq" ]; then
		timed "$dir/lq.time" "$lq" "$dir/model.BF16.gguf" "$dir/model.Q4_K_M.gguf" Q4_K_M "$threads"
	else
		$qa quantize "$dir/model.BF16.gguf" --recipe Q4_K_M -o "$dir/model.Q4_K_M.gguf" >/dev/null
	fi
}

echo
echo "diff pipeline: Qwen2.5-1.5B-shaped checkpoint ($layers layers, tied, bf16), $threads threads"
make_case "$work/v1" 151936
make_case "$work/v2" 303872
for v in v1 v2; do
	timed "$work/$v/diff.time" $qa diff "$work/$v/model.BF16.gguf" "$work/$v/model.Q4_K_M.gguf" -j "$threads"
done
if [ -n "$lq" ] && [ ! -s "$work/v1/lq.time" ]; then
	timed "$work/v1/lq.time" "$lq" "$work/v1/model.BF16.gguf" "$work/v1/lq.gguf" Q4_K_M "$threads"
	rm -f "$work/v1/lq.gguf"
fi
read -r dw du ds dr <"$work/v1/diff.time"
read -r _ _ _ dr2 <"$work/v2/diff.time"
awk -v dw="$dw" -v du="$du" -v ds="$ds" -v dr="$dr" -v dr2="$dr2" \
	-v sz="$(stat -c %s "$work/v1/model.BF16.gguf")" 'BEGIN {
	printf "  diff:            %6.2f s wall, %6.2f s cpu, peak RSS %5.0f MiB (bound: <= 1024) for %.0f MB of reference\n",
		dw, du + ds, dr / 1024, sz / 1e6
	printf "  vocab doubled:   peak RSS %5.0f MiB, growth %+.1f %% (bound: <= 10 %%)\n",
		dr2 / 1024, (dr2 - dr) * 100 / dr }'
if [ -s "$work/v1/lq.time" ]; then
	read -r lw lu ls lr <"$work/v1/lq.time"
	awk -v dw="$dw" -v dc="$(awk -v u="$du" -v s="$ds" 'BEGIN { print u + s }')" \
		-v lw="$lw" -v lc="$(awk -v u="$lu" -v s="$ls" 'BEGIN { print u + s }')" -v lr="$lr" 'BEGIN {
	printf "  llama-quantize:  %6.2f s wall, %6.2f s cpu, peak RSS %5.0f MiB\n", lw, lc, lr / 1024
	printf "  diff / llama-quantize: wall %.2f (bound: <= 0.25), cpu %.2f\n", dw / lw, dc / lc }'
else
	echo "  diff / llama-quantize: skipped (no llama-quantize; set LLAMA_QUANTIZE)"
fi
