#!/bin/bash
# bench/remote.sh - what remote inputs cost (part of make bench; not a test).
# Against the fake Hub of tests/fakehub.py on 127.0.0.1 it prints
#   - the bytes the CDN served for 'inspect' of a remote GGUF, against the
#     GGUF's header size (issue 9 bound: header + 64 KiB);
#   - the wall time and peak RSS of a remote 'diff' over loopback against the
#     same diff on the local files (bounds: 1.25x the wall time, local RSS +
#     256 MiB).
set -euo pipefail
qa=${QA_BIN:-./quantaudit}
top=${QA_TOP_SRCDIR:-.}
work=${BENCH_WORK:-bench-work}/remote
rm -rf "$work"
mkdir -p "$work/root/org/ref" "$work/root/org/art"
ref=$work/root/org/ref/model.safetensors
art=$work/root/org/art/model.Q4_K_M.gguf

echo
echo "remote inputs: synthetic llama-style checkpoint (hidden 2048, ffn 5632, 4 layers, vocab 32000, bf16)"
$qa synth --arch llama --hidden 2048 --intermediate 5632 --heads 16 --kv-heads 4 --vocab 32000 \
	--layers 4 --seed 7 -o "$ref" >/dev/null
$qa quantize "$ref" --recipe Q4_K_M -o "$art" >/dev/null
python3 "$top/tests/fakehub.py" serve "$work/root" "$work/ports" 900 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 600); do [ -s "$work/ports" ] && break; sleep 0.1; done
read -r hub _ <"$work/ports"
export HF_ENDPOINT=http://127.0.0.1:$hub XDG_CACHE_HOME=$work/xdg HF_HOME=$work/hf
stats() {
	exec 3<>"/dev/tcp/127.0.0.1/$hub"
	printf 'GET /__stats HTTP/1.0\r\n\r\n' >&3
	sed '1,/^\r$/d' <&3 | grep -o "\"$1\": [0-9]*" | grep -o '[0-9]*$'
	exec 3<&-
}
reset() {
	exec 3<>"/dev/tcp/127.0.0.1/$hub"
	printf 'GET /__control?reset=1 HTTP/1.0\r\n\r\n' >&3
	cat <&3 >/dev/null
	exec 3<&-
}
# run LABEL CMD...: wall seconds and peak RSS (KiB) into $wall and $rss
run() {
	/usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || [ $? -le 1 ]
	read -r wall rss <"$work/time"
}

reset
$qa inspect --json "hf://org/art:Q4_K_M" --quiet >"$work/inspect.json"
served=$(stats cdn_bytes)
header=$(grep -o '"data_offset": [0-9]*' "$work/inspect.json" | grep -o '[0-9]*$')
awk -v s="$served" -v h="$header" 'BEGIN {
	printf "  inspect: %d bytes served for a %d-byte header (header + %d; bound: header + 65536)\n", s, h, s - h }'

run $qa diff "$ref" "$art"
lw=$wall lr=$rss
rm -rf "$work/xdg"
reset
run $qa diff hf://org/ref hf://org/art:Q4_K_M --quiet
rw=$wall rr=$rss
served=$(stats cdn_bytes)
awk -v lw="$lw" -v rw="$rw" -v lr="$lr" -v rr="$rr" -v s="$served" \
	-v sz="$(($(stat -c %s "$ref") + $(stat -c %s "$art")))" 'BEGIN {
	printf "  diff local:  %6.2f s, peak RSS %6.0f MiB\n", lw, lr / 1024
	printf "  diff remote: %6.2f s, peak RSS %6.0f MiB, %.0f MB served for %.0f MB of files\n", rw, rr / 1024, s / 1e6, sz / 1e6
	printf "  remote / local wall time = %.2f (bound: <= 1.25); RSS difference %+.0f MiB (bound: <= +256)\n",
		rw / lw, (rr - lr) / 1024 }'
