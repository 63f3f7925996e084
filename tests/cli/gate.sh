#!/bin/bash
# tests/cli/gate.sh - the CI gate from the outside: policies, -o, JUnit (held
# against a real XML parser, xmllint), and GitHub Actions output under a
# simulated runner (GITHUB_ACTIONS, GITHUB_STEP_SUMMARY and GITHUB_OUTPUT set
# to temporary files), with hostile tensor names.
#
# Sources of truth: the runner's rules as actions/toolkit states them (command
# escaping: message %, CR, LF; properties also : and ,; outputs name=value or
# name<<DELIM), GitHub's limits (10 error and 10 warning annotations per
# step, 1 MiB per step summary), the JUnit shape the three reporters read
# (counts equal to the cases), and issue 10's policy rules.  The golden
# files named below were checked by hand against those rules.
. "$(dirname "$0")/lib.sh"
golden=$top/tests/cli/golden
unset GITHUB_ACTIONS GITHUB_STEP_SUMMARY GITHUB_OUTPUT
# check NAME CONDITION-COMMAND... : one assertion
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name" "$*"; fi
}
# golden NAME FILE : FILE (with $TMP replaced) equals tests/cli/golden/NAME
golden() {
	sed "s#$TMP#\$TMP#g" "$2" >"$TMP/g.cmp"
	if [ "${QA_UPDATE_GOLDEN:-0}" = 1 ]; then cp "$TMP/g.cmp" "$golden/$1"; fi
	if cmp -s "$golden/$1" "$TMP/g.cmp"; then ok "$1"; else
		bad "$1" "differs from golden/$1"
		diff -u "$golden/$1" "$TMP/g.cmp" | head -n 20
	fi
}
# run EXPECTED_EXIT ARGS... : here run is lib.sh's expect (no check of its own; status 1 and
# a FAIL on another exit status), so that `run 0 ... && check ...` reads as before
run() { expect "$@"; }
# runner: a fresh simulated GitHub runner environment
runner() {
	: >"$TMP/summary"
	: >"$TMP/output"
	export GITHUB_ACTIONS=true GITHUB_STEP_SUMMARY=$TMP/summary GITHUB_OUTPUT=$TMP/output
}
norunner() { unset GITHUB_ACTIONS GITHUB_STEP_SUMMARY GITHUB_OUTPUT; }

# junit_consistent FILE : well-formed, and every count attribute equals its cases
junit_consistent() {
	local f=$1 x
	xmllint --noout "$f" || return 1
	x() { xmllint --xpath "$1" "$f" 2>/dev/null; }
	[ "$(x 'count(/testsuites/testsuite/testcase)')" = "$(x 'string(/testsuites/@tests)')" ] || return 1
	[ "$(x 'count(//testcase[failure])')" = "$(x 'string(/testsuites/@failures)')" ] || return 1
	[ "$(x 'count(//testcase[skipped])')" = "$(x 'string(/testsuites/@skipped)')" ] || return 1
	local n i
	n=$(x 'count(/testsuites/testsuite)')
	for ((i = 1; i <= n; i++)); do
		[ "$(x "count(/testsuites/testsuite[$i]/testcase)")" = "$(x "string(/testsuites/testsuite[$i]/@tests)")" ] || return 1
		[ "$(x "count(/testsuites/testsuite[$i]/testcase[failure])")" = "$(x "string(/testsuites/testsuite[$i]/@failures)")" ] || return 1
		[ "$(x "count(/testsuites/testsuite[$i]/testcase[skipped])")" = "$(x "string(/testsuites/testsuite[$i]/@skipped)")" ] || return 1
	done
}

F=fixtures/models
REF=$F/micro-qwen2.safetensors
CORRUPT=$F/micro-qwen2.Q4_K_M.corrupt.gguf
TRANSPOSED=$F/micro-qwen2.pure-q4_K.transposed.gguf
P=tests/data/policy

# ---------------------------------------------------------------- policy
# the corrupt fixture has one divergent tensor (blk.1.ffn_up.weight)
printf '{"schema":"quantaudit.policy/1","verdicts":{"divergent":"warn"}}' >"$TMP/warn.json"
run 0 diff $REF $CORRUPT --policy "$TMP/warn.json" && ok policy-divergent-warn-exit-0
# the verdict paragraph follows the policy (PASS), then states the raw findings
check policy-paragraph-pass grep -q "^Policy $TMP/warn.json: PASS: nothing fails it (1 warned, 0 ignored); the findings that follow are reported, not blocking\. Findings: 1 of 27 tensors diverges: blk\.1\.ffn_up\.weight" "$TMP/out"
check policy-paragraph-no-raw-fail sh -c '! grep -q "FAIL" "$1"' sh "$TMP/out"
run 0 diff $REF $CORRUPT --policy "$TMP/warn.json" --report "$TMP/pol.md" && ok policy-report-exit-0
check policy-report-status grep -q '^Status: PASS under policy warn\.json (findings: FAIL — findings)  $' "$TMP/pol.md"
check policy-report-tldr grep -q "^Policy \`$TMP/warn.json\`: PASS: nothing fails it" "$TMP/pol.md"
# and FAIL when the policy fails, naming what fails it
printf '{"schema":"quantaudit.policy/1","verdicts":{"identical":"fail","divergent":"ignore"}}' >"$TMP/strict.json"
run 1 diff $REF $CORRUPT --policy "$TMP/strict.json" && ok policy-fail-exit-1
check policy-paragraph-fail grep -q "^Policy $TMP/strict.json: FAIL: 26 items fail it (token_embd\.weight, .*, \.\.\.); 0 warned, 1 ignored\. Findings: 1 of 27 tensors diverge" "$TMP/out"
printf '{"schema":"quantaudit.policy/1","skip":["blk.1.ffn_up.*"]}' >"$TMP/skip.json"
run 0 diff $REF $CORRUPT --policy "$TMP/skip.json" --json && ok policy-skip-exit-0
check policy-skip-json python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert j["verdict"]=="pass" and j["gate"]=={"verdict":"pass","tensors":27,"identical":26,"failing":0,"warnings":0,"ignored":1}, j["gate"]
assert j["summary"]["divergent"]==1   # the findings are unchanged; only the gate differs
' "$TMP/out"
# a limit below 1 fails identical tensors too: their ratio is exactly 1
printf '{"schema":"quantaudit.policy/1","max_rmse_ratio":{"ffn_down":0.99}}' >"$TMP/limit.json"
run 1 diff $REF $CORRUPT --policy "$TMP/limit.json" --json && ok policy-limit-exit-1
check policy-limit-failing python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["gate"]["failing"]==3' "$TMP/out"
# divergent still fails under good-full; its recipe and ratio rules warn at most
run 1 diff $REF $CORRUPT --policy $P/good-full.json -j 1 && ok policy-good-full-exit-1
for f in $P/bad-*.json; do
	"$bin" diff $REF $CORRUPT --policy "$f" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	if [ "$rc" = 3 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "^quantaudit: $f: offset [0-9]*: " "$TMP/err" &&
		[ ! -s "$TMP/out" ]; then
		ok "policy-$(basename "$f" .json)"
	else
		bad "policy-$(basename "$f" .json)" "exit $rc: $(cat "$TMP/err")"
	fi
done
run 4 diff $REF $CORRUPT --policy "$TMP/no/such.json" && ok policy-missing-file-exit-4
run 3 verify $CORRUPT tests/data/manifest/good-blocks.json --policy $P/bad-unknown-verdict.json && ok policy-verify-bad-exit-3
run 3 shape-swap $REF --policy $P/bad-unknown-key.json && ok policy-swap-bad-exit-3
printf '{"schema":"quantaudit.policy/1","verdicts":{"divergent":"ignore"}}' >"$TMP/swapok.json"
run 0 shape-swap $REF --policy "$TMP/swapok.json" && ok policy-swap-ignore-exit-0

# ---------------------------------------------------------------- -o
run 1 diff $REF $CORRUPT --json -j 1 && cp "$TMP/out" "$TMP/stdout.json"
run 1 diff $REF $CORRUPT -o "$TMP/o.json" -j 1
check o-stdout-empty test ! -s "$TMP/out"
check o-same-bytes cmp -s "$TMP/stdout.json" "$TMP/o.json"
check o-no-temp-left test -z "$(find "$TMP" -name 'o.json.tmp.*')"
run 4 diff $REF $CORRUPT -o "$TMP/no/dir/o.json" && ok o-unwritable-exit-4
run 1 shape-swap $REF -o "$TMP/s.json" && check o-swap python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/s.json"
"$bin" hash $CORRUPT --blocks -o "$TMP/m.json" 2>/dev/null
run 0 verify $CORRUPT "$TMP/m.json" -o "$TMP/v.json" && check o-verify grep -q '"verdict": "pass"' "$TMP/v.json"

# ---------------------------------------------------------------- JUnit
run 1 diff $REF $CORRUPT --junit "$TMP/j.xml" && check junit-diff-consistent junit_consistent "$TMP/j.xml"
golden gate-junit-diff.xml "$TMP/j.xml"
run 0 diff $REF $CORRUPT --junit "$TMP/j2.xml" --policy "$TMP/skip.json"
check junit-skip-consistent junit_consistent "$TMP/j2.xml"
check junit-skip-one test "$(xmllint --xpath 'count(//skipped)' "$TMP/j2.xml")" = 1
run 1 shape-swap $REF $REF --label "a&b" --label "c<d" --junit "$TMP/s.xml"
check junit-swap-consistent junit_consistent "$TMP/s.xml"
check junit-swap-two-suites test "$(xmllint --xpath 'string(/testsuites/testsuite[2]/@name)' "$TMP/s.xml")" = "c<d"
run 1 verify $TRANSPOSED "$TMP/m.json" --junit "$TMP/v.xml"
check junit-verify-consistent junit_consistent "$TMP/v.xml"

# hostile names: the corrupt artifact with blk.0.attn_q.weight renamed, byte
# for byte, to 19 bytes holding CR, LF, a workflow command, '%', ':' and ','
HOSTILE=$(printf 'a\r\n::error::%%0A<&\x27,')
python3 - "$CORRUPT" "$TMP/hostile.gguf" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
old, new = b"blk.0.attn_q.weight", b"a\r\n::error::%0A<&',"
assert len(old) == len(new) and b.count(old) == 1
open(sys.argv[2], "wb").write(b.replace(old, new))
PY
run 1 diff $REF "$TMP/hostile.gguf" --junit "$TMP/h.xml" && check junit-hostile-consistent junit_consistent "$TMP/h.xml"
check junit-hostile-name test "$(xmllint --xpath 'string(//testcase[contains(@name,"::error")]/@name)' "$TMP/h.xml")" = "$HOSTILE"

# ---------------------------------------------------------------- simulated runner
runner
run 1 diff $REF $CORRUPT
check gh-group-begins test "$(head -n 1 "$TMP/out")" = "::group::quantaudit diff: per-tensor table"
check gh-group-ends grep -q '^::endgroup::$' "$TMP/out"
golden gate-gh-diff.err "$TMP/err"
golden gate-gh-diff.summary "$TMP/summary"
golden gate-gh-diff.output "$TMP/output"
# --json keeps stdout clean: annotations go to stderr only
run 1 diff $REF $CORRUPT --json
check gh-json-clean python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/out"
check gh-json-annotation grep -q '^::error title=' "$TMP/err"

# hostile names: the extra tensor's annotation cannot start a command of its own
runner
run 1 diff $REF "$TMP/hostile.gguf"
check gh-hostile-lines test "$(grep -c -v '^::\(error\|warning\) title=' "$TMP/err")" = 0
check gh-hostile-message grep -q -F "::a%0D%0A::error::%250A<&'," "$TMP/err"
check gh-hostile-title grep -q -F "title=quantaudit diff%3A extra a%0D%0A%3A%3Aerror%3A%3A%250A<&'%2C::" "$TMP/err"
check gh-hostile-summary-no-command test "$(grep -c '^::' "$TMP/summary")" = 0
check gh-hostile-summary-escaped grep -q -F 'a\x0d\x0a::error::%0A\<\&'"'"',' "$TMP/summary"

# caps: a policy failing identical tensors makes 26 failures: 9 + one that counts 17
runner
printf '{"schema":"quantaudit.policy/1","verdicts":{"identical":"fail"},"warn_rmse_ratio":{"*":0.5}}' >"$TMP/many.json"
run 1 diff $REF $CORRUPT --policy "$TMP/many.json"
check gh-cap-errors test "$(grep -c '^::error ' "$TMP/err")" = 10
check gh-cap-warnings test "$(grep -c '^::warning ' "$TMP/err")" = 0   # all 27 fail; none is only warned
check gh-cap-count grep -q '^::error title=quantaudit diff%3A 18 more failing::18 more failing tensors not annotated' "$TMP/err"
printf '{"schema":"quantaudit.policy/1","verdicts":{"divergent":"ignore"},"warn_rmse_ratio":{"*":0.5}}' >"$TMP/warns.json"
runner
run 0 diff $REF $CORRUPT --policy "$TMP/warns.json"
check gh-cap-warn10 test "$(grep -c '^::warning ' "$TMP/err")" = 10
check gh-cap-warn-count grep -q '^::warning title=quantaudit diff%3A 18 more warned::' "$TMP/err"
check gh-output-pass test "$(head -n 1 "$TMP/output")" = "verdict=pass"

# the 1 MiB cut: a step summary already near 1 MiB takes only what fits
runner
head -c $((1048576 - 1500)) /dev/zero | tr '\0' 'x' >"$TMP/summary"
run 1 diff $REF $CORRUPT --policy "$TMP/many.json"
size=$(stat -c %s "$TMP/summary")
check gh-summary-under-1mib test "$size" -lt 1048576
check gh-summary-says-cut grep -q '^\*\*Summary cut\*\*: GitHub keeps at most 1 MiB per step' "$TMP/summary"

# outputs: a report path with a line break uses the delimiter syntax
runner
mkdir -p "$TMP/r
d"
QUANTAUDIT_GNUPLOT=/nonexistent/gnuplot "$bin" diff $REF $CORRUPT --report "$TMP/r
d/r.md" >/dev/null 2>&1
python3 - "$TMP/output" "$TMP" >"$TMP/parsed" <<'PY'
import sys
# the runner's reading of the file (actions/runner's file command parser)
lines = open(sys.argv[1]).read().split("\n")
out, i = {}, 0
while i < len(lines):
    l = lines[i]
    if not l:
        i += 1; continue
    if "<<" in l and ("=" not in l or l.index("<<") < l.index("=")):
        name, delim = l.split("<<", 1)
        val = []
        i += 1
        while lines[i] != delim:
            val.append(lines[i]); i += 1
        out[name] = "\n".join(val)
    else:
        name, v = l.split("=", 1)
        out[name] = v
    i += 1
print(out == {"verdict": "fail", "tensors": "27", "identical": "26", "failing": "1",
              "report": sys.argv[2] + "/r\nd/r.md"}, out)
PY
check gh-outputs-multiline grep -q '^True' "$TMP/parsed"

# verify and shape-swap in the simulated runner
runner
run 1 verify $TRANSPOSED "$TMP/m.json"
check gh-verify-annotations test "$(grep -c '^::error ' "$TMP/err")" -ge 1
check gh-verify-output grep -q '^verdict=fail$' "$TMP/output"
runner
run 1 shape-swap $REF
check gh-swap-summary grep -q '^## quantaudit shape-swap: FAIL' "$TMP/summary"
check gh-swap-group grep -q '^::group::quantaudit shape-swap' "$TMP/out"
norunner
# --github without the runner's files: annotations only
run 1 diff $REF $CORRUPT --github
check gh-flag-annotates grep -q '^::error ' "$TMP/err"


# ---------------------------------------------------------------- sharding
# merge(shards) against the unsharded run, byte for byte: the JSON, the
# JUnit file, the report (but its Date line) and the exit status, for N in
# 1..5.  Outputs go to the same paths in both runs (the report names them in
# its falsifier), so the unsharded run's are moved aside first.  One shard
# computes the whole-file digests (--file-digests); the plots are off so
# that the reports do not depend on gnuplot.
export QUANTAUDIT_GNUPLOT=/nonexistent/gnuplot
mkdir -p "$TMP/sh/out" "$TMP/sh/one"
same_outputs() { # compare $TMP/sh/one with $TMP/sh/out
	local f okk=1
	for f in o.json j.xml stdout gh-err gh-summary gh-output; do
		[ -e "$TMP/sh/one/$f" ] || continue
		cmp -s "$TMP/sh/one/$f" "$TMP/sh/out/$f" || { okk=0; echo "  $f differs"; diff "$TMP/sh/one/$f" "$TMP/sh/out/$f" | head -n 6; }
	done
	cmp -s <(grep -v '^Date: ' "$TMP/sh/one/r.md") <(grep -v '^Date: ' "$TMP/sh/out/r.md") || { okk=0; echo "  r.md differs"; }
	[ "$okk" = 1 ]
}
# outputs_of CMD... : the JSON, report, JUnit, table and exit status of one
# run, and its GitHub output under a simulated runner, into $TMP/sh/out
# (no_report=1: a command without --report, whose report is then empty)
outputs_of() {
	local rep=(--report "$TMP/sh/out/r.md")
	[ "${no_report:-0}" = 1 ] && { rep=(); : >"$TMP/sh/out/r.md"; }
	"$bin" "$@" "${rep[@]}" --junit "$TMP/sh/out/j.xml" -o "$TMP/sh/out/o.json" 2>/dev/null
	out_rc=$?
	"$bin" "$@" >"$TMP/sh/out/stdout" 2>/dev/null
	: >"$TMP/sh/out/gh-summary"
	: >"$TMP/sh/out/gh-output"
	GITHUB_ACTIONS=true GITHUB_STEP_SUMMARY=$TMP/sh/out/gh-summary GITHUB_OUTPUT=$TMP/sh/out/gh-output \
		"$bin" "$@" >/dev/null 2>"$TMP/sh/out/gh-err"
}
# shard_case NAME "N..." "MERGE-OPTIONS" DIFF-ARGS... : for each N, the merge
# of N shards (the last one with --file-digests) equals the unsharded
# `diff DIFF-ARGS MERGE-OPTIONS` byte for byte; parts are $TMP/sh/NAME<N>-<K>.json
# (shard_cmd=verify: of verify instead)
shard_case() {
	local name=$1 ns=$2 margs=$3 N K cmd=${shard_cmd:-diff}
	shift 3
	rm -f "$TMP/sh/one"/* "$TMP/sh/out"/*
	# shellcheck disable=SC2086
	outputs_of "$cmd" "$@" $margs
	local want_rc=$out_rc
	mv "$TMP/sh/out"/* "$TMP/sh/one/"
	for N in $ns; do
		parts=()
		for ((K = 1; K <= N; K++)); do
			fd=()
			[ "$K" = "$N" ] && fd=(--file-digests)
			"$bin" "$cmd" "$@" --shard "$K/$N" "${fd[@]}" -o "$TMP/sh/$name$N-$K.json" -j 1 || bad "shard-$name-$K-of-$N" "exit $?"
			parts+=("$TMP/sh/$name$N-$K.json")
		done
		# shellcheck disable=SC2086
		outputs_of merge "${parts[@]}" $margs
		if [ "$out_rc" = "$want_rc" ] && same_outputs; then ok "shard-$name-merge-N$N"; else bad "shard-$name-merge-N$N" "exit $out_rc (want $want_rc) or outputs differ"; fi
		rm -f "$TMP/sh/out"/*
	done
}
FX=fixtures/forensics
# a divergent tensor (one corrupted block)
shard_case p "1 2 3 4 5" "" $REF $CORRUPT
# forensics: imatrix verdicts (the artifact declares a matrix), the
# transposed blk.1.ffn_down.weight found by error, a metadata finding
shard_case fx "1 2 3 4 5" "" $FX/real/model.safetensors $FX/real/imatrix.transposed.gguf
# the same with the matrix given: weighted re-quantization, byte-identical tensors
shard_case fxi "2 3" "" --imatrix fixtures/imatrix/real-qwen2.imatrix.gguf $FX/real/model.safetensors $FX/real/imatrix.transposed.gguf
# another quantizer: the different-quantizer inference and its spread
shard_case fxo "3" "" $FX/real/model.safetensors $FX/real/other-quantizer.transposed.gguf
# the unpermuted layout (llama attn_q/attn_k)
shard_case fxu "2" "" $FX/llama/model.safetensors $FX/llama/unpermuted.q4_0.gguf
# the recipe comparison, summed per class from every shard's tensors
shard_case cmp "1 2 4" "" $REF $CORRUPT --compare-recipe Q4_K_M,Q8_0
# a policy given to the merge judges as it judges the unsharded run
printf '{"schema":"quantaudit.policy/1","verdicts":{"imatrix":"warn","metadata":"warn"},"skip":["output_norm.weight"]}' >"$TMP/sh-policy.json"
shard_case pol "3" "--policy $TMP/sh-policy.json" $FX/real/model.safetensors $FX/real/imatrix.transposed.gguf
check shard-cases-cover-forensics python3 -c '
import json,sys
j=json.load(open(sys.argv[1])); v=[t["verdict"] for t in j["tensors"]]
assert "imatrix" in v and "transposed" in v, v
assert any(t.get("evidence")=="error" for t in j["tensors"])
assert any(m["finding"] for m in j["metadata"])
' "$TMP/sh/one/o.json"
# the metadata finding is a gate item (warned by that policy), not a tensor
check gate-metadata-item-not-tensor python3 -c '
import json,sys
j=json.load(open(sys.argv[1])); out=dict(l.split("=",1) for l in open(sys.argv[2]).read().split("\n") if "=" in l)
assert j["gate"]["tensors"]==len(j["tensors"])==int(out["tensors"]), (j["gate"], out)
assert j["gate"]["warnings"]>=1 and "::warning title=quantaudit diff%3A metadata " in open(sys.argv[3]).read()
' "$TMP/sh/one/o.json" "$TMP/sh/one/gh-output" "$TMP/sh/one/gh-err"
# every tensor is audited by exactly one shard of five
check shard-partition-covers python3 -c '
import json,sys
idx=[a["index"] for f in sys.argv[1:] for a in json.load(open(f))["audited"]]
assert sorted(idx)==list(range(27)), idx
' "$TMP"/sh/p5-*.json
# shape-swap with two models
rm -f "$TMP/sh/one"/* "$TMP/sh/out"/*
outputs_of shape-swap $REF $REF --label a --label b
want_rc=$out_rc
mv "$TMP/sh/out"/* "$TMP/sh/one/"
for N in 1 3; do
	parts=()
	for ((K = 1; K <= N; K++)); do
		"$bin" shape-swap $REF $REF --label a --label b --shard "$K/$N" --file-digests -o "$TMP/sh/s$N-$K.json" || bad "shard-swap-$K-of-$N" "exit $?"
		parts+=("$TMP/sh/s$N-$K.json")
	done
	outputs_of merge "${parts[@]}"
	if [ "$out_rc" = "$want_rc" ] && same_outputs; then ok "shard-swap-merge-N$N"; else bad "shard-swap-merge-N$N" "exit $out_rc (want $want_rc) or outputs differ"; fi
	rm -f "$TMP/sh/out"/*
done
# hash: merge(shards) prints exactly the unsharded manifest (table, JSON
# with block digests, llama-gguf-hash text; GGUF and safetensors)
hash_case() { # NAME FILE OPTIONS...
	local name=$1 file=$2 N K
	shift 2
	"$bin" hash "$file" "$@" >"$TMP/sh/hash-one" 2>/dev/null
	for N in 1 2 3 5; do
		parts=()
		for ((K = 1; K <= N; K++)); do
			fd=()
			[ "$K" = 1 ] && fd=(--file-digests)
			"$bin" hash "$file" "$@" --shard "$K/$N" "${fd[@]}" -o "$TMP/sh/$name$N-$K.json" || bad "shard-$name-$K-of-$N" "exit $?"
			parts+=("$TMP/sh/$name$N-$K.json")
		done
		"$bin" merge "${parts[@]}" >"$TMP/sh/hash-out" 2>"$TMP/err"
		rc=$?
		if [ "$rc" = 0 ] && cmp -s "$TMP/sh/hash-one" "$TMP/sh/hash-out"; then ok "shard-$name-merge-N$N"; else bad "shard-$name-merge-N$N" "exit $rc or the manifest differs"; fi
	done
}
hash_case hash-table $CORRUPT
hash_case hash-json $CORRUPT --json --blocks
hash_case hash-gguf $CORRUPT --format gguf-hash
hash_case hash-st $REF --json
# the merged manifest is one verify accepts, and -o writes it like hash -o
"$bin" merge "$TMP"/sh/hash-json3-*.json -o "$TMP/sh/merged.manifest.json"
run 0 verify $CORRUPT "$TMP/sh/merged.manifest.json" && ok shard-hash-verify
# without --file-digests: the file and metadata digests are null, the
# llama-gguf-hash text lacks its all-tensor-data line, the table says so
"$bin" hash $CORRUPT --json --shard 1/2 -o "$TMP/sh/hn1.json"
"$bin" hash $CORRUPT --json --shard 2/2 -o "$TMP/sh/hn2.json"
"$bin" hash $CORRUPT --json >"$TMP/sh/hash-one"
run 0 merge "$TMP/sh/hn1.json" "$TMP/sh/hn2.json"
check shard-hash-no-digests-null python3 -c '
import json,sys; j=json.load(open(sys.argv[1])); one=json.load(open(sys.argv[2]))
assert j["file"]["sha256"] is None and j["metadata_sha256"] is None
assert j["tensors"]==one["tensors"]
' "$TMP/out" "$TMP/sh/hash-one"
"$bin" hash $CORRUPT --shard 1/2 -o "$TMP/sh/hn1.json"
"$bin" hash $CORRUPT --shard 2/2 -o "$TMP/sh/hn2.json"
run 0 merge "$TMP/sh/hn1.json" "$TMP/sh/hn2.json"
check shard-hash-no-digests-table grep -q '^sha256:   not computed' "$TMP/out"
"$bin" merge "$TMP/sh/hash-json3-1.json" "$TMP/sh/hash-json3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err_early() { if [ "$rc" = 3 ] && grep -q -- "$2" "$TMP/err"; then ok "$1"; else bad "$1" "exit $rc: $(cat "$TMP/err")"; fi; }
one_err_early shard-hash-missing "shard 2 of 3 is missing"
"$bin" merge "$TMP/sh/hash-json3-1.json" "$TMP/sh/p3-2.json" "$TMP/sh/hash-json3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err_early shard-hash-other-command "belongs to another run"
"$bin" merge "$TMP/sh/hash-json3-1.json" "$TMP/sh/hash-table3-2.json" "$TMP/sh/hash-json3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err_early shard-hash-other-options "belongs to another run"
run 2 hash $CORRUPT --file-digests && ok hash-digests-need-shard
run 2 merge "$TMP/sh/hn1.json" "$TMP/sh/hn2.json" --policy "$TMP/sh-policy.json" && ok merge-hash-no-policy
# without --file-digests the digests are null and the report says so
"$bin" merge "$TMP"/sh/p2-1.json "$TMP"/sh/p3-2.json 2>/dev/null; true
"$bin" diff $REF $CORRUPT --shard 1/2 -o "$TMP/sh/nd1.json"
"$bin" diff $REF $CORRUPT --shard 2/2 -o "$TMP/sh/nd2.json"
run 1 merge "$TMP/sh/nd1.json" "$TMP/sh/nd2.json" --json --report "$TMP/sh/nd.md"
check shard-no-digests-null python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert j["artifact"]["sha256"] is None and j["reference"]["sha256"] is None
' "$TMP/out"
check shard-no-digests-report grep -q 'not computed' "$TMP/sh/nd.md"
# refusals, each naming the part
one_err() { # NAME PATTERN: exit 3, one line on stderr matching PATTERN
	if [ "$rc" = 3 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q -- "$2" "$TMP/err"; then ok "$1"; else bad "$1" "exit $rc: $(cat "$TMP/err")"; fi
}
"$bin" merge "$TMP/sh/p3-1.json" "$TMP/sh/p3-1.json" "$TMP/sh/p3-2.json" "$TMP/sh/p3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err shard-overlap "^quantaudit: $TMP/sh/p3-1.json: offset 0: overlaps $TMP/sh/p3-1.json: both are shard 1 of 3$"
"$bin" merge "$TMP/sh/p3-1.json" "$TMP/sh/p3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err shard-missing "shard 2 of 3 is missing"
"$bin" merge "$TMP/sh/p3-1.json" "$TMP/sh/p3-2.json" "$TMP/sh/p2-2.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err shard-other-count "$TMP/sh/p2-2.json: offset 0: belongs to another run"
"$bin" diff $REF $TRANSPOSED --shard 2/3 -o "$TMP/sh/foreign.json"
"$bin" merge "$TMP/sh/p3-1.json" "$TMP/sh/foreign.json" "$TMP/sh/p3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err shard-foreign "$TMP/sh/foreign.json: offset 0: belongs to another run than $TMP/sh/p3-1.json"
"$bin" merge "$TMP/sh/p3-1.json" "$TMP/sh/s3-2.json" "$TMP/sh/p3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err shard-other-command "$TMP/sh/s3-2.json: offset 0: belongs to another run"
# tampering: a header edited without its identity, an audited tensor moved to another shard, junk
python3 - "$TMP/sh/p3-2.json" "$TMP/sh" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
h = json.loads(json.dumps(p)); h["header"]["artifact_size"] += 1
json.dump(h, open(sys.argv[2] + "/tamper-header.json", "w"))
a = json.loads(json.dumps(p)); a["audited"][0]["index"] = (a["audited"][0]["index"] + 1) % 27
json.dump(a, open(sys.argv[2] + "/tamper-index.json", "w"))
b = json.loads(json.dumps(p)); b["audited"][0]["verdict"] = 99
json.dump(b, open(sys.argv[2] + "/tamper-verdict.json", "w"))
PY
for tcase in header:"does not match its header" index:"not shard 2's to audit" verdict:"is not an integer in range"; do
	what=${tcase%%:*}
	"$bin" merge "$TMP/sh/p3-1.json" "$TMP/sh/tamper-$what.json" "$TMP/sh/p3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
	one_err "shard-tamper-$what" "tamper-$what.json: offset 0: .*${tcase#*:}"
done
printf '{"schema":"quantaudit.part/1"' >"$TMP/sh/trunc.json"
"$bin" merge "$TMP/sh/trunc.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err shard-truncated "trunc.json: offset [0-9]*: part is not valid json"
run 2 diff $REF $CORRUPT --shard 0/3 && ok shard-bad-spec
run 2 diff $REF $CORRUPT --shard 4/3 && ok shard-k-above-n
run 2 diff $REF $CORRUPT --shard 1/2 --report "$TMP/x.md" && ok shard-refuses-report
run 2 diff $REF $CORRUPT --file-digests && ok digests-need-shard
run 2 merge && ok merge-needs-parts
# verify --shard: merge(shards) equals the unsharded verify byte for byte
# (JSON, JUnit, table, GitHub output, exit status), for N in 1..5, on a
# tampered file (block-located mismatch, against the block index sidecar and
# inline block digests), a file of another layout (shape mismatches, metadata
# changed) and an intact file; the last shard computes the file digests.
# vshard_case NAME "N..." "MERGE-OPTIONS" FILE MANIFEST (verify has no report)
vshard_case() { shard_cmd=verify no_report=1 shard_case "$@"; }
"$bin" hash $CORRUPT --blocks -o "$TMP/sh/vm.json"
"$bin" hash $CORRUPT --json --blocks >"$TMP/sh/vm-inline.json"
cp $CORRUPT "$TMP/sh/vt.gguf"
printf '\x55' | dd of="$TMP/sh/vt.gguf" bs=1 seek=300000 conv=notrunc 2>/dev/null
vshard_case vt "1 2 3 4 5" "" "$TMP/sh/vt.gguf" "$TMP/sh/vm.json"
vshard_case vti "2 5" "" "$TMP/sh/vt.gguf" "$TMP/sh/vm-inline.json"
vshard_case vtr "1 2 3 4 5" "" $TRANSPOSED "$TMP/sh/vm.json"
vshard_case vok "1 2 3 4 5" "" $CORRUPT "$TMP/sh/vm.json"
printf '{"schema":"quantaudit.policy/1","verdicts":{"mismatch":"warn","metadata-changed":"ignore"}}' >"$TMP/sh/vpolicy.json"
vshard_case vpol "3" "--policy $TMP/sh/vpolicy.json" $TRANSPOSED "$TMP/sh/vm.json"
"$bin" merge "$TMP"/sh/vt5-*.json --json >"$TMP/sh/vt.merged"
"$bin" merge "$TMP"/sh/vtr5-*.json --json >"$TMP/sh/vtr.merged"
check vshard-cases-findings python3 -c '
import json,sys; t=json.load(open(sys.argv[1])); r=json.load(open(sys.argv[2]))
assert [(x["name"],x["status"],x["divergent_blocks"]) for x in t["differences"]]==[("blk.0.ffn_down.weight","mismatch",1)] and t["file_match"] is False, t
assert {x["status"] for x in r["differences"]}=={"mismatch","shape-mismatch"} and r["metadata_match"] is False, r
' "$TMP/sh/vt.merged" "$TMP/sh/vtr.merged"
# every manifest tensor is verified by exactly one shard of five
check vshard-partition-covers python3 -c '
import json,sys
ps=[json.load(open(f)) for f in sys.argv[1:]]
n=len(ps[0]["header"]["tensors"]); listed=sum(p["digests"]["tensors_ok"]+sum(a["index"]<n for a in p["audited"]) for p in ps)
assert listed==n and all(p["digests"]["tensors_ok"]>0 for p in ps), listed
' "$TMP"/sh/vok5-*.json
# without --file-digests: null in the JSON, "not computed" in the text
"$bin" verify "$TMP/sh/vt.gguf" "$TMP/sh/vm.json" --shard 1/2 -o "$TMP/sh/vn1.json"
"$bin" verify "$TMP/sh/vt.gguf" "$TMP/sh/vm.json" --shard 2/2 -o "$TMP/sh/vn2.json"
run 1 merge "$TMP/sh/vn1.json" "$TMP/sh/vn2.json" --json
check vshard-no-digests-null python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert j["file_match"] is None and j["metadata_match"] is None and len(j["differences"])==1
' "$TMP/out"
run 1 merge "$TMP/sh/vn1.json" "$TMP/sh/vn2.json"
check vshard-no-digests-text grep -q '^file and metadata digests: not computed' "$TMP/out"
# refusals
"$bin" merge "$TMP/sh/vt3-1.json" "$TMP/sh/vt3-1.json" "$TMP/sh/vt3-2.json" "$TMP/sh/vt3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err vshard-overlap "vt3-1.json: offset 0: overlaps $TMP/sh/vt3-1.json: both are shard 1 of 3$"
"$bin" merge "$TMP/sh/vt3-1.json" "$TMP/sh/vt3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err vshard-missing "shard 2 of 3 is missing"
"$bin" merge "$TMP/sh/vt3-1.json" "$TMP/sh/vtr3-2.json" "$TMP/sh/vt3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err vshard-other-file "vtr3-2.json: offset 0: belongs to another run"
"$bin" verify "$TMP/sh/vt.gguf" "$TMP/sh/vm-inline.json" --shard 2/3 -o "$TMP/sh/vti3-2.json"
"$bin" merge "$TMP/sh/vt3-1.json" "$TMP/sh/vti3-2.json" "$TMP/sh/vt3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err vshard-other-manifest "vti3-2.json: offset 0: belongs to another run"
"$bin" merge "$TMP/sh/vt3-1.json" "$TMP/sh/p3-2.json" "$TMP/sh/vt3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err vshard-other-command "p3-2.json: offset 0: belongs to another run"
python3 - "$TMP/sh/vt3-2.json" "$TMP/sh" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
a = json.loads(json.dumps(p)); a["digests"]["tensors_ok"] -= 1
json.dump(a, open(sys.argv[2] + "/vtamper-count.json", "w"))
PY
"$bin" merge "$TMP/sh/vt3-1.json" "$TMP/sh/vtamper-count.json" "$TMP/sh/vt3-3.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
one_err vshard-tamper-count "vtamper-count.json: offset 0: shard 2's part accounts for"
run 2 verify "$TMP/sh/vt.gguf" "$TMP/sh/vm.json" --shard 1/2 --policy "$TMP/sh/vpolicy.json" && ok vshard-refuses-policy
run 2 verify "$TMP/sh/vt.gguf" "$TMP/sh/vm.json" --file-digests && ok vshard-digests-need-shard
run 2 verify $CORRUPT tests/data/ggufhash/real-sha256.txt --shard 1/2 && ok vshard-needs-json-manifest
run 2 merge "$TMP/sh/vn1.json" "$TMP/sh/vn2.json" --report "$TMP/sh/x.md" && ok vshard-merge-no-report
unset QUANTAUDIT_GNUPLOT


# ---------------------------------------------------------------- verify against llama-gguf-hash
# tests/data/ggufhash/real-*.txt: what the real llama-gguf-hash (--sha256, --all,
# --sha256 --no-layer) printed for the corrupt fixture
for m in real-sha256 real-all real-no-layer; do
	run 0 verify $CORRUPT tests/data/ggufhash/$m.txt && ok "verify-gguf-hash-$m"
done
"$bin" hash $CORRUPT --format gguf-hash >"$TMP/ours.txt"
run 0 verify $CORRUPT "$TMP/ours.txt" && ok verify-gguf-hash-ours
cp $CORRUPT "$TMP/tampered.gguf"
printf '\x55' | dd of="$TMP/tampered.gguf" bs=1 seek=300000 conv=notrunc 2>/dev/null
run 1 verify "$TMP/tampered.gguf" tests/data/ggufhash/real-sha256.txt --json
check verify-gguf-hash-tampered python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert [(x["name"],x["status"]) for x in j["differences"]]==[("blk.0.ffn_down.weight","mismatch")] and not j["file_match"], j
' "$TMP/out"
run 1 verify "$TMP/tampered.gguf" tests/data/ggufhash/real-no-layer.txt && ok verify-gguf-hash-no-layer-tampered
printf 'md5  00  x\n' >"$TMP/bad.txt"
"$bin" verify $CORRUPT "$TMP/bad.txt" >"$TMP/out" 2>"$TMP/err"; rc=$?
check verify-gguf-hash-malformed test "$rc" = 3 -a "$(cat "$TMP/err")" = "quantaudit: $TMP/bad.txt: offset 0: unknown hash type 'md5' (xxh64, sha1, sha256 or uuid)"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
