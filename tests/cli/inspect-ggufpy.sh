#!/bin/bash
# tests/cli/inspect-ggufpy.sh - `quantaudit inspect` against llama.cpp's own gguf-py reader, live.
#
# Source of truth: gguf-py's GGUFReader (llama.cpp's gguf-py, with numpy), looked up in $QA_GGUF_PY,
# then ~/.cache/llama-cpp-ref/src/gguf-py (see tests/cli/inspect-facts.py).  Skipped (exit 77) where it
# cannot be imported: CI does not build llama.cpp, and inspect-facts.sh holds the pinned facts then.
#  - pinned-*: each fixtures/models/NAME.gguf-py.json is, byte for byte, what gguf-py reads now.
#  - gguf-py-*: every GGUF under fixtures/ (files written by ggml's writer, the real llama-quantize and
#    gguf-py): inspect's text and JSON show what gguf-py reads.
. "$(dirname "$0")/lib.sh"
facts=tests/cli/inspect-facts.py
probe=fixtures/models/micro-qwen2.Q4_K_M.corrupt.gguf

# a python3 that imports gguf-py and numpy (numpy may be installed for the system python only)
py=""
for p in ${QA_GGUF_PYTHON:-} "${PYTHON3:-python3}" python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" "$facts" gguf-py "$probe" >/dev/null 2>"$TMP/probe.err"; then
		py=$p
		break
	fi
done
if [ -z "$py" ]; then
	echo "SKIP: no python3 here imports gguf-py and numpy: $(tail -n 1 "$TMP/probe.err")"
	exit 77
fi

for f in fixtures/models/*.gguf-py.json; do
	name=$(basename "$f" .gguf-py.json)
	"$py" "$facts" gguf-py "${f%-py.json}" >"$TMP/now.json" 2>"$TMP/err"
	if cmp -s "$f" "$TMP/now.json"; then ok "pinned-$name"; else
		no "pinned-$name" "$f differs from gguf-py's reading: $(diff "$f" "$TMP/now.json" | head -c 400) $(head -c 200 "$TMP/err")"
	fi
done

while IFS= read -r g; do
	if "$py" "$facts" gguf-py "$g" >"$TMP/f.json" 2>"$TMP/err" && "$bin" inspect --json "$g" >"$TMP/i.json" 2>>"$TMP/err" &&
		"$bin" inspect "$g" >"$TMP/i.txt" 2>>"$TMP/err" &&
		python3 "$facts" check "$TMP/f.json" "$g" "$TMP/i.json" "$TMP/i.txt" >"$TMP/check" 2>&1; then
		ok "gguf-py $g ($(cat "$TMP/check"))"
	else
		no "gguf-py $g" "$(head -c 600 "$TMP/check") $(head -c 300 "$TMP/err")"
	fi
done < <(find fixtures -name '*.gguf' | LC_ALL=C sort)

echo "inspect-ggufpy: $pass passed, $fail failed"
[ "$fail" = 0 ]
