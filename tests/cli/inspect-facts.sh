#!/bin/bash
# tests/cli/inspect-facts.sh - what `quantaudit inspect` shows (text and --json) held to readers that are
# not quantaudit's.
#
# Sources of truth:
#  - the GGUF fixtures: fixtures/models/NAME.gguf-py.json, the facts llama.cpp's gguf-py reader
#    (GGUFReader) reads from fixtures/models/NAME.gguf (version, alignment, data offset, every metadata
#    key's type and value, every tensor's name, type, shape, offset and size), written by
#    tests/cli/inspect-facts.py gguf-py (the command is in golden/SOURCES).  inspect-ggufpy.sh holds
#    these files to gguf-py itself where it is installed; this script needs only python3.
#  - the safetensors fixture: its JSON header, read here with Python's json module.
# The inspect goldens (golden/inspect-gguf*.out, inspect-st*.out) are run.sh's record of this same output.
. "$(dirname "$0")/lib.sh"
facts=tests/cli/inspect-facts.py

# fact_case NAME FILE FACTS: inspect FILE (text and JSON) against FACTS
fact_case() {
	if "$bin" inspect --json "$2" >"$TMP/i.json" 2>"$TMP/err" && "$bin" inspect "$2" >"$TMP/i.txt" 2>>"$TMP/err" &&
		python3 "$facts" check "$3" "$2" "$TMP/i.json" "$TMP/i.txt" >"$TMP/check" 2>&1; then
		ok "$1 ($(cat "$TMP/check"))"
	else
		no "$1" "$(head -c 600 "$TMP/check") $(head -c 200 "$TMP/err")"
	fi
}

n=0
for f in fixtures/models/*.gguf-py.json; do
	fact_case "gguf-py-facts $(basename "$f" .gguf-py.json)" "${f%-py.json}" "$f"
	n=$((n + 1))
done
if [ "$n" -ge 2 ]; then ok "gguf-py-facts files ($n)"; else no "gguf-py-facts files" "only $n under fixtures/models"; fi

python3 "$facts" safetensors fixtures/models/micro-qwen2.safetensors >"$TMP/st.json" || no st-header "python could not read it"
fact_case "safetensors-header micro-qwen2" fixtures/models/micro-qwen2.safetensors "$TMP/st.json"

echo "inspect-facts: $pass passed, $fail failed"
[ "$fail" = 0 ]
