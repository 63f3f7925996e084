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
# quantaudit itself and the time ratio is skipped.  BENCH_LAYERS (default 8),
# BENCH_THREADS (default 2) and BENCH_REPS (runs of each, default 3) change
# the case.  The machine may be shared: diff and llama-quantize run
# alternately, the ratios are medians of the runs side by side, and the load
# average is printed before and after.
set -euo pipefail
qa=${QA_BIN:-./quantaudit}
work=${BENCH_WORK:-bench-work}/pipeline
layers=${BENCH_LAYERS:-8}
threads=${BENCH_THREADS:-2}
reps=${BENCH_REPS:-3}
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
		"$lq" "$dir/model.BF16.gguf" "$dir/model.Q4_K_M.gguf" Q4_K_M "$threads" >/dev/null 2>&1
	else
		$qa quantize "$dir/model.BF16.gguf" --recipe Q4_K_M -o "$dir/model.Q4_K_M.gguf" >/dev/null
	fi
}

# median of the numbers on standard input
median() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo
echo "diff pipeline: Qwen2.5-1.5B-shaped checkpoint ($layers layers, tied, bf16), $threads threads, $reps runs each"
make_case "$work/v1" 151936
make_case "$work/v2" 303872
echo "  load before: $(uptime | sed 's/.*load average: //')"
# side by side: diff and llama-quantize alternate on the same case, so that
# load from other work falls on both; then the doubled vocabulary's RSS
: >"$work/runs"
for r in $(seq "$reps"); do
	timed "$work/v1/diff.time" $qa diff "$work/v1/model.BF16.gguf" "$work/v1/model.Q4_K_M.gguf" -j "$threads"
	read -r dw du ds dr <"$work/v1/diff.time"
	lw=0 lu=0 ls=0
	if [ -n "$lq" ]; then
		timed "$work/v1/lq.time" "$lq" "$work/v1/model.BF16.gguf" "$work/v1/lq.gguf" Q4_K_M "$threads"
		rm -f "$work/v1/lq.gguf"
		read -r lw lu ls _ <"$work/v1/lq.time"
	fi
	timed "$work/v2/diff.time" $qa diff "$work/v2/model.BF16.gguf" "$work/v2/model.Q4_K_M.gguf" -j "$threads"
	read -r _ _ _ dr2 <"$work/v2/diff.time"
	echo "$dw $du $ds $dr $lw $lu $ls $dr2" >>"$work/runs"
done
echo "  load after:  $(uptime | sed 's/.*load average: //')"
col() { awk -v c="$1" '{ print $c }' "$work/runs" | median; }
cpu() { awk -v u="$1" -v s="$2" '{ print $u + $s }' "$work/runs" | median; }
dw=$(col 1) dc=$(cpu 2 3) dr=$(col 4) dr2=$(col 8)
# growth per run (each run's v1 and v2 side by side), then its median
growth=$(awk '{ print ($8 - $4) * 100 / $4 }' "$work/runs" | median)
awk -v dw="$dw" -v dc="$dc" -v dr="$dr" -v dr2="$dr2" -v g="$growth" \
	-v sz="$(stat -c %s "$work/v1/model.BF16.gguf")" 'BEGIN {
	printf "  diff:            %6.2f s wall, %6.2f s cpu, peak RSS %5.1f MiB (bound: <= 1024) for %.0f MB of reference (medians)\n",
		dw, dc, dr / 1024, sz / 1e6
	printf "  vocab doubled:   peak RSS %5.1f MiB, growth %+.1f %% (bound: <= 10 %%)\n", dr2 / 1024, g }'
if [ -n "$lq" ]; then
	lw=$(col 5) lc=$(cpu 6 7)
	wr=$(awk '{ print $1 / $5 }' "$work/runs" | median)
	cr=$(awk '{ print ($2 + $3) / ($6 + $7) }' "$work/runs" | median)
	awk -v lw="$lw" -v lc="$lc" -v wr="$wr" -v cr="$cr" 'BEGIN {
	printf "  llama-quantize:  %6.2f s wall, %6.2f s cpu (medians)\n", lw, lc
	printf "  diff / llama-quantize: wall %.2f (bound: <= 0.25), cpu %.2f (medians of the runs side by side)\n", wr, cr }'
else
	echo "  diff / llama-quantize: skipped (no llama-quantize; set LLAMA_QUANTIZE)"
fi
