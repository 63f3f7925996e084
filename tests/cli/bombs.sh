#!/bin/bash
# tests/cli/bombs.sh - hostile inputs under a memory and time limit.
#
# make-bombs.py writes the corpus (huge arrays, deep nesting, giant strings,
# huge tensor and key counts, huge safetensors headers, a sparse file whose
# header claims 1.5 GB); each case runs `quantaudit inspect` (text: the parse, not a JSON dump of
# 60 million numbers, is what is measured) under
# `ulimit -v` (3 GiB of address space: the sparse files are mapped, not read,
# and before the header cap the sparse header alone took 4.6 GB) and a 60 s timeout and must end with
# the stated exit status: 0 for the valid ones, 3 for the refused ones, never
# a crash, a kill or an out-of-memory exit.  Source of truth: the caps in
# docs/quantaudit.1 (LIMITS).  The sanitizer build (QA_SANITIZERS set) skips
# the memory limit, since ASan reserves terabytes of address space.
. "$(dirname "$0")/lib.sh"
python3 "$top/tests/cli/make-bombs.py" "$TMP" || exit 99
limit=3145728
[ -n "${QA_SANITIZERS:-}" ] && limit=unlimited

# b NAME EXPECTED_EXIT FILE
b() {
	local name=$1 want=$2 file=$3 rc
	( ulimit -v $limit; exec timeout 60 "$bin" inspect "$TMP/$file" >/dev/null 2>"$TMP/err" )
	rc=$?
	if [ "$rc" = "$want" ]; then ok "bomb-$name"; else no "bomb-$name" "exit $rc, want $want: $(head -c 300 "$TMP/err")"; fi
}

b u8-array 0 u8-array.gguf
b str-array 0 str-array.gguf
b sparse-header 3 sparse-header.gguf
b giant-string 3 giant-string.gguf
b deep-nesting 3 deep-nesting.gguf
b tensor-count 3 tensor-count.gguf
b kv-count 3 kv-count.gguf
b st-sparse-header 3 sparse-header.safetensors
b st-huge-length 3 huge-length.safetensors
b st-big-metadata 0 big-metadata.safetensors

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
