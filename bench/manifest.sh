#!/bin/bash
# bench/manifest.sh - block manifests against their bounds (part of make
# bench; not a test).  On one q4_K artifact of a few hundred MB, side by side
# in one run, it prints the ratios issue 13 sets:
#   hash --blocks -o M      wall time / sha256sum's on the same file  (<= 1.5)
#   block location data     size of M.blocks / the artifact's          (<= 10 %)
#   verify                  peak RSS (/usr/bin/time's maximum resident set) (<= 256 MiB)
# Each time is the best of three runs, alternating the commands, from a warm
# page cache.  BENCH_ARTIFACT=FILE measures an existing file instead.
set -euo pipefail
qa=${QA_BIN:-./quantaudit}
work=${BENCH_WORK:-bench-work}
mkdir -p "$work"
art=${BENCH_ARTIFACT:-$work/manifest.q4_K.gguf}
if [ ! -f "$art" ]; then
	ref=$work/manifest-ref/model.safetensors
	mkdir -p "$(dirname "$ref")"
	$qa synth --arch llama --hidden 4096 --intermediate 11008 --heads 32 --kv-heads 32 --vocab 32000 \
		--layers 1 --seed 11 -o "$ref" >/dev/null
	$qa quantize "$ref" --type q4_K -o "$art" >/dev/null
	rm -rf "$work/manifest-ref"
fi
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | awk '{printf "%.3f", $1 - $3}'; }
min() { printf '%s\n' "$@" | sort -g | head -n 1; }
cat "$art" >/dev/null
s=() h=() v=()
for _ in 1 2 3; do
	s+=("$(secs sha256sum "$art")")
	h+=("$(secs $qa hash --blocks -o "$work/m.json" "$art")")
	v+=("$(secs $qa verify "$art" "$work/m.json")")
done
rss=$( { /usr/bin/time -f '%M' $qa verify "$art" "$work/m.json" >/dev/null; } 2>&1 | tail -n 1)
size=$(stat -c %s "$art")
isize=$(stat -c %s "$work/m.json.blocks")
jsize=$(stat -c %s "$work/m.json")
awk -v s="$(min "${s[@]}")" -v h="$(min "${h[@]}")" -v v="$(min "${v[@]}")" -v rss="$rss" \
    -v size="$size" -v isize="$isize" -v jsize="$jsize" 'BEGIN {
	printf "\nblock manifests: q4_K artifact of %.0f MB (best of 3, warm cache)\n", size / 1e6
	printf "  sha256sum:                 %6.2f s\n", s
	printf "  hash --blocks -o M:        %6.2f s   %.2fx sha256sum (target <= 1.50)\n", h, h / s
	printf "  verify FILE M:             %6.2f s   %.2fx sha256sum\n", v, v / s
	printf "  block index M.blocks:      %6.1f MB  %.1f %% of the artifact (target <= 10 %%); JSON %.0f KB\n", isize / 1e6, 100 * isize / size, jsize / 1e3
	printf "  verify peak RSS:           %6.1f MiB (target <= 256 MiB)\n", rss / 1024
}'
