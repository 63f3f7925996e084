# shellcheck shell=bash
# tests/cli/lib.sh - the set-up and helpers every CLI test script shares.
# Sourced, never run:  . "$(dirname "$0")/lib.sh"
#
# Set-up: `set -u`; top (the source tree, $QA_TOP_SRCDIR or two levels above the
# script), bin (the binary, $QA_BIN or $top/quantaudit), TMP (a fresh temporary
# directory, removed on exit), the counters pass and fail, and the working
# directory $top (so relative fixture paths work; every path set here is
# absolute).  A script with more to clean up on exit (a server to stop)
# defines cleanup_hook; it runs before $TMP is removed.
#
# Output is TAP-ish, one line a check: "ok    NAME" or "FAIL  NAME: WHY".  Each
# script ends with its own summary line and `[ "$fail" = 0 ]`.
set -u
top=${QA_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${QA_BIN:-$top/quantaudit}
TMP=$(mktemp -d)
cleanup_hook() { :; }
qa_lib_exit() {
	cleanup_hook
	rm -rf "$TMP"
}
trap qa_lib_exit EXIT
cd "$top" || exit 99
pass=0
fail=0

# ok NAME: a passing check
ok() { pass=$((pass + 1)); echo "ok    $1"; }
# no NAME [WHY]: a failing check (bad is the same, under the name some scripts use)
no() { fail=$((fail + 1)); echo "FAIL  $1${2+: $2}"; }
bad() { no "$@"; }

# qa_exec ARGS...: run quantaudit, stdout to $TMP/out, stderr to $TMP/err; its exit status in rc
qa_exec() {
	"$bin" "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
}
# run NAME WANT ARGS...: one check, on the exit status only (output in $TMP/out, $TMP/err)
run() {
	local name=$1 want=$2 rc
	shift 2
	qa_exec "$@"
	if [ "$rc" = "$want" ]; then ok "$name"; else no "$name" "exit $rc, want $want: $(head -c 300 "$TMP/err")"; fi
}
# expect WANT ARGS...: as run, but no check of its own: a failure (named after the
# command) when the exit status is not WANT, and then status 1; rc is left set
expect() {
	local want=$1
	shift
	qa_exec "$@"
	if [ "$rc" != "$want" ]; then
		no "exit of $*" "exit $rc, want $want: $(head -c 300 "$TMP/err")"
		return 1
	fi
}

# has NAME FILE TEXT: FILE contains TEXT
has() {
	if grep -qF -- "$3" "$2"; then ok "$1"; else no "$1" "no '$3' in $(head -c 400 "$2")"; fi
}
# hasre NAME FILE ERE: a line of FILE matches ERE
hasre() {
	if grep -qE -- "$3" "$2"; then ok "$1"; else no "$1" "no /$3/ in $(head -c 400 "$2")"; fi
}
# jget FILE EXPR: a Python expression over the JSON document j in FILE (python3 is in ci/setup)
jget() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
