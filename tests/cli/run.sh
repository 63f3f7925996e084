#!/bin/bash
# tests/cli/run.sh - the CLI's contract, held against golden files.
#
# Each case runs quantaudit from the source tree root (so paths in the output
# are the relative ones written below), checks the exit status, and compares
# stdout and stderr with tests/cli/golden/NAME.out and NAME.err when those
# exist.  Temporary paths are replaced by $TMP.  QA_UPDATE_GOLDEN=1 rewrites
# the golden files from the current output instead of comparing.
set -u
top=${QA_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${QA_BIN:-$top/quantaudit}
golden=$top/tests/cli/golden
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$top" || exit 99
pass=0
fail=0

# t NAME EXPECTED_EXIT ARGS... : run one case.
t() {
	local name=$1 want=$2
	shift 2
	"$bin" "$@" >"$TMP/out" 2>"$TMP/err"
	local rc=$?
	sed -i "s#$TMP#\$TMP#g" "$TMP/out" "$TMP/err"
	local ok=1 why=""
	if [ "$rc" != "$want" ]; then ok=0; why="exit $rc, want $want"; fi
	for s in out err; do
		if [ "${QA_UPDATE_GOLDEN:-0}" = 1 ]; then
			if [ -s "$TMP/$s" ]; then cp "$TMP/$s" "$golden/$name.$s"; else rm -f "$golden/$name.$s"; fi
		elif [ -f "$golden/$name.$s" ]; then
			if ! cmp -s "$golden/$name.$s" "$TMP/$s"; then
				ok=0; why="$why std$s differs from golden/$name.$s"
				diff -u "$golden/$name.$s" "$TMP/$s" | head -n 20
			fi
		elif [ -s "$TMP/$s" ] && [ "$s" = err ] && [ "$want" = 0 ]; then
			ok=0; why="$why unexpected stderr: $(head -c 200 "$TMP/err")"
		fi
	done
	if [ $ok = 1 ]; then pass=$((pass + 1)); echo "ok    $name"; else fail=$((fail + 1)); echo "FAIL  $name: $why"; fi
}

# one_line NAME EXPECTED_EXIT ARGS... : the error must be exactly one line in the house style.
one_line() {
	local name=$1 want=$2
	shift 2
	"$bin" "$@" >"$TMP/out" 2>"$TMP/err"
	local rc=$? lines
	lines=$(wc -l <"$TMP/err")
	if [ "$rc" = "$want" ] && [ "$lines" = 1 ] && grep -q '^quantaudit: .*: offset [0-9]*: ' "$TMP/err"; then
		pass=$((pass + 1)); echo "ok    $name"
	else
		fail=$((fail + 1)); echo "FAIL  $name: exit $rc (want $want), $lines stderr lines: $(head -c 300 "$TMP/err")"
	fi
}

F=fixtures/models
# ---------------------------------------------------------------- global
t version-exit 0 --version
t help 0 --help
t no-args 2
t bad-command 2 frobnicate

# ---------------------------------------------------------------- inspect
t inspect-help 0 inspect --help
t inspect-gguf 0 inspect $F/micro-qwen2.Q4_K_M.corrupt.gguf
t inspect-gguf-json 0 inspect --json $F/micro-qwen2.Q4_K_M.corrupt.gguf
t inspect-st 0 inspect $F/micro-qwen2.safetensors
t inspect-st-json 0 inspect $F/micro-qwen2.safetensors --json
t inspect-missing-arg 2 inspect
t inspect-bad-option 2 inspect --frob $F/micro-qwen2.safetensors
t inspect-no-file 4 inspect no/such/file.gguf
for f in tests/data/gguf/bad-*.gguf; do
	[ -e "$f" ] || continue
	one_line "inspect-$(basename "$f" .gguf)" 3 inspect "$f"
done
for f in tests/data/safetensors/bad-*.safetensors; do
	[ -e "$f" ] || continue
	one_line "inspect-st-$(basename "$f" .safetensors)" 3 inspect "$f"
done

[ -f "$top/tests/cli/more.sh" ] && . "$top/tests/cli/more.sh"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
