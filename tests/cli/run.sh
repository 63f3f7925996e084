#!/bin/bash
# tests/cli/run.sh - the CLI's contract, held against golden files.
#
# Each case runs quantaudit from the source tree root (so paths in the output
# are the relative ones written below), checks the exit status, and compares
# stdout and stderr with tests/cli/golden/NAME.out and NAME.err when those
# exist (golden/SOURCES says what pins each one; a golden file it does not
# cover fails).  Temporary paths are replaced by $TMP.  QA_UPDATE_GOLDEN=1 rewrites
# the golden files from the current output instead of comparing.
. "$(dirname "$0")/lib.sh"
golden=$top/tests/cli/golden

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
	if [ $ok = 1 ]; then ok "$name"; else no "$name" "$why"; fi
}

# one_line NAME EXPECTED_EXIT ARGS... : the error must be exactly one line in the house style.
one_line() {
	local name=$1 want=$2
	shift 2
	"$bin" "$@" >"$TMP/out" 2>"$TMP/err"
	local rc=$? lines
	lines=$(wc -l <"$TMP/err")
	if [ "$rc" = "$want" ] && [ "$lines" = 1 ] && grep -q '^quantaudit: .*: offset [0-9]*: ' "$TMP/err"; then
		ok "$name"
	else
		no "$name" "exit $rc (want $want), $lines stderr lines: $(head -c 300 "$TMP/err")"
	fi
}

F=fixtures/models
# ---------------------------------------------------------------- global
# --version names the linked libraries, whose versions belong to the machine
if "$bin" --version | grep -q -E '^quantaudit [0-9]+\.[0-9]+\.[0-9]+ \(OpenSSL [^,]+, libcurl [^,]+, jansson [^)]+\)$'; then
	ok version
else
	no version "$("$bin" --version)"
fi
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

# t_file NAME FILE : compare a file the previous case wrote (minus its Date and
# version lines, which name the day and the linked libraries) with golden/NAME.
t_file() {
	local name=$1 file=$2
	grep -v -E '^(Date: |quantaudit version: |- quantaudit: )' "$file" 2>/dev/null |
		sed "s#$TMP#\$TMP#g" >"$TMP/filecmp"
	if [ "${QA_UPDATE_GOLDEN:-0}" = 1 ]; then cp "$TMP/filecmp" "$golden/$name"; fi
	if [ -s "$TMP/filecmp" ] && cmp -s "$golden/$name" "$TMP/filecmp"; then
		ok "$name"
	else
		no "$name" "$file differs from golden/$name"
		diff -u "$golden/$name" "$TMP/filecmp" | head -n 20
	fi
}

REF=$F/micro-qwen2.safetensors
CORRUPT=$F/micro-qwen2.Q4_K_M.corrupt.gguf
TRANSPOSED=$F/micro-qwen2.pure-q4_K.transposed.gguf

# ---------------------------------------------------------------- quantize
t quantize-help 0 quantize --help
t quantize-no-recipe 2 quantize $REF -o "$TMP/q.gguf"
t quantize-both 2 quantize $REF --recipe Q4_K_M --type q4_K -o "$TMP/q.gguf"
t quantize-bad-recipe 2 quantize $REF --recipe Q4_K_XL -o "$TMP/q.gguf"
t quantize-bad-type 2 quantize $REF --type q8_K -o "$TMP/q.gguf"
# llama-quantize refuses these without an importance matrix (llama-quant.cpp's
# tensor_requires_imatrix: iq1/iq2/iq3_xxs tensors other than token_embd/output)
t quantize-needs-imatrix 2 quantize $REF --recipe IQ2_XXS -o "$TMP/q.gguf"
t quantize-needs-imatrix-type 2 quantize $REF --type iq3_xxs -o "$TMP/q.gguf"
t quantize-needs-imatrix-dry 2 quantize $REF --recipe IQ3_XS --dry-run
# IQ4_XS needs none; llama.cpp's plan: output q6_K, attn_v q5_K (n_gqa = 4), the rest iq4_xs
t quantize-iq4xs-dry 0 quantize $REF --recipe IQ4_XS --dry-run
t quantize-bad-layout 2 quantize $REF --type q4_K --layout sideways -o "$TMP/q.gguf"
t quantize-bad-threads 2 quantize $REF --type q4_K -j 0 -o "$TMP/q.gguf"
t quantize-no-output 2 quantize $REF --type q4_K
t quantize-dry-run 0 quantize $REF --recipe Q4_K_M --dry-run
t quantize-q4km 0 quantize $REF --recipe Q4_K_M -o "$TMP/q.gguf" -j 2
# quantize's bytes against ggml's: every tensor of the Q4_K_M artifact just
# written equals, byte for byte, ggml's own Q4_K_M artifact of the same
# reference (fixtures/models), except the one byte planted there at the
# place fixtures/models/defects.json gives (compared by same-bytes.py, not by
# quantaudit; the tensor tables come from inspect --json)
"$bin" inspect --json "$TMP/q.gguf" >"$TMP/q.json" 2>/dev/null
"$bin" inspect --json $CORRUPT >"$TMP/ggml.json" 2>/dev/null
if ${PYTHON3:-python3} tests/cli/same-bytes.py "$TMP/q.gguf" "$TMP/q.json" $CORRUPT "$TMP/ggml.json" \
	$F/defects.json >"$TMP/out" 2>&1; then
	ok "quantize-q4km-ggml-bytes: $(cat "$TMP/out")"
else
	no "quantize-q4km-ggml-bytes" "$(head -c 400 "$TMP/out")"
fi
t quantize-swap-invalid 2 quantize $REF --type q4_K --layout in,out -o "$TMP/swap.gguf"
t quantize-swap-allowed 0 quantize $REF --type q4_K --layout in,out --allow-invalid -o "$TMP/swap.gguf"
t diff-layout-swap 1 diff $REF "$TMP/swap.gguf"
t quantize-nan 3 quantize tests/data/cli/nan.safetensors --type q8_0 -o "$TMP/nan.gguf"
t quantize-bad-ref 3 quantize tests/data/safetensors/bad-overlap.safetensors --type q8_0 -o "$TMP/x.gguf"
t quantize-unwritable 4 quantize $REF --type q8_0 -o "$TMP/no/such/dir/x.gguf"

# ---------------------------------------------------------------- hash and verify
t hash-help 0 hash --help
t verify-help 0 verify --help
t hash-table 0 hash $CORRUPT
t hash-json 0 hash $CORRUPT --json
t hash-st-json 0 hash $REF --json -j 1
t hash-gguf-hash 0 hash $CORRUPT --format gguf-hash
t hash-bad-format 2 hash $CORRUPT --format xml
t hash-manifest 0 hash $CORRUPT --blocks -o "$TMP/m.json"
t verify-ok 0 verify $CORRUPT "$TMP/m.json"
cp $CORRUPT "$TMP/tampered.gguf"
printf '\x55' | dd of="$TMP/tampered.gguf" bs=1 seek=300000 conv=notrunc 2>/dev/null
t verify-tampered 1 verify "$TMP/tampered.gguf" "$TMP/m.json"
t verify-tampered-json 1 verify "$TMP/tampered.gguf" "$TMP/m.json" --json
t verify-other-file 1 verify $TRANSPOSED "$TMP/m.json"
printf '{"schema":"quantaudit.manifest/9"}' >"$TMP/bad-manifest.json"
t verify-bad-schema 3 verify $CORRUPT "$TMP/bad-manifest.json"
printf '{"schema": ' >"$TMP/trunc-manifest.json"
t verify-truncated-manifest 3 verify $CORRUPT "$TMP/trunc-manifest.json"
t verify-missing-arg 2 verify $CORRUPT
# a tampered copy of the safetensors fixture: byte 2,000,000 lies in
# model.layers.1.mlp.up_proj.weight; verify names it and its block
t hash-st-manifest 0 hash $REF --blocks -o "$TMP/st.json"
cp $REF "$TMP/tampered.safetensors"
printf '\x55' | dd of="$TMP/tampered.safetensors" bs=1 seek=2000000 conv=notrunc 2>/dev/null
t verify-st-tampered 1 verify "$TMP/tampered.safetensors" "$TMP/st.json"

# ---------------------------------------------------------------- diff
t diff-help 0 diff --help
t diff-corrupt 1 diff $REF $CORRUPT
t diff-corrupt-json 1 diff $REF $CORRUPT --json -j 1
t diff-transposed 1 diff $REF $TRANSPOSED
t diff-missing-arg 2 diff $REF
t diff-bad-artifact 3 diff $REF tests/data/gguf/bad-magic.gguf
t diff-bad-ref 3 diff tests/data/safetensors/bad-overlap.safetensors $CORRUPT
t diff-id-without-report 2 diff $REF $CORRUPT --id X
# without gnuplot (forced), so that the golden report does not depend on the machine
QUANTAUDIT_GNUPLOT=/nonexistent/gnuplot t diff-report 1 diff $REF $CORRUPT --report "$TMP/report.md" --id AUDIT-TEST-001 --title "CLI test" --plot-format svg
t_file diff-report.md "$TMP/report.md"

# ---------------------------------------------------------------- diff forensics
# fixtures/forensics/make.py states what each artifact holds: pieces of what the real llama-quantize
# wrote with an importance matrix (blk.1.ffn_down.weight from W transposed), the same without the
# quantize.imatrix.* keys, one flipped block under those keys, and a llama checkpoint quantized without
# the rotary q/k permutation, from the same weights and from moved ones.  The goldens hold the verdicts
# those facts imply: imatrix, transposed by error, divergent, unpermuted by bytes and by error.
FX=fixtures/forensics
t diff-fx-imatrix 1 diff $FX/real/model.safetensors $FX/real/imatrix.transposed.gguf -j 1
t diff-fx-other-json 1 diff $FX/real/model.safetensors $FX/real/other-quantizer.transposed.gguf --json -j 1
t diff-fx-corrupt 1 diff $FX/real/model.safetensors $FX/real/corrupt-block.gguf -j 1
t diff-fx-unpermuted 1 diff $FX/llama/model.safetensors $FX/llama/unpermuted.q4_0.gguf -j 1
t diff-fx-unpermuted-other 1 diff $FX/llama/model.safetensors $FX/llama/unpermuted-other.q4_0.gguf -j 1
QUANTAUDIT_GNUPLOT=/nonexistent/gnuplot t diff-fx-report 1 diff $FX/real/model.safetensors $FX/real/imatrix.transposed.gguf --report "$TMP/fx.md" --id AUDIT-TEST-002 --title "CLI test: forensics" --plot-format svg
t_file diff-fx-report.md "$TMP/fx.md"
# the corrupt artifact is ggml's Q4_K_M but for one block: ratio 1.000 against Q4_K_M except ffn_up
t diff-fx-compare-recipe 1 diff $REF $CORRUPT --compare-recipe Q4_K_M,Q8_0 -j 1
t diff-fx-compare-recipe-bad 2 diff $REF $CORRUPT --compare-recipe Q4_K_M,Q9_X
# with the matrix llama-quantize used, the real piece's transposed tensor is found by bytes
t diff-fx-imatrix-given 1 diff --imatrix fixtures/imatrix/real-qwen2.imatrix.gguf $FX/real/model.safetensors $FX/real/imatrix.transposed.gguf -j 1

# ---------------------------------------------------------------- recipe-check (usage; the numbers: check_recipecheck)
t recipe-check-help 0 recipe-check --help
t recipe-check-no-report 2 recipe-check $REF
t recipe-check-bad-recipe 2 recipe-check $REF --recipe Q4_K_Z --report "$TMP/rc.md"
t recipe-check-too-many-measured 2 recipe-check $REF --measure-layers 3 --report "$TMP/rc.md"

# ---------------------------------------------------------------- shape-swap
t swap-help 0 shape-swap --help
t swap-micro 1 shape-swap $REF
t swap-micro-json 1 shape-swap $REF --json --type q4_K
t swap-q8-json 0 shape-swap $REF --json --type q8_0
t swap-bad-type 2 shape-swap $REF --type f16
t swap-labels-mismatch 2 shape-swap $REF $REF --label one
t swap-nan 3 shape-swap tests/data/cli/nan.safetensors

# ---------------------------------------------------------------- synth
t synth-help 0 synth --help
mkdir -p "$TMP/synth"
t synth-small 0 synth --arch llama --hidden 256 --intermediate 512 --heads 4 --kv-heads 2 --vocab 300 --layers 2 --seed 5 -o "$TMP/synth/model.safetensors"
t synth-inspect 0 inspect "$TMP/synth/model.safetensors"
t synth-quantize-dry 0 quantize "$TMP/synth" --recipe Q4_K_M --dry-run
t synth-bad-heads 2 synth --arch qwen2 --hidden 250 --intermediate 512 --heads 4 --kv-heads 3 --vocab 300 -o "$TMP/s2.safetensors"
t synth-missing 2 synth --arch qwen2 --hidden 256 -o "$TMP/s3.safetensors"

# ---------------------------------------------------------------- imatrix
# Source of truth: every quantized tensor of fixtures/imatrix/mini.*.gguf was written by the real
# llama-quantize (fixtures/imatrix/make-fixtures.py names the artifact of ../shared/oracle/real each
# one was cut from, and with which matrix it was made), so "identical" below is agreement with
# llama-quantize --imatrix itself.  Warnings and error lines are this tool's contract.
IM=fixtures/imatrix
IMG=$IM/real-qwen2.imatrix.gguf
t imatrix-diff-A 0 diff --imatrix $IMG $IM/mini.safetensors $IM/mini.A.gguf
t imatrix-diff-B 0 diff --imatrix $IMG $IM/mini.safetensors $IM/mini.B.gguf -j 2
t imatrix-diff-B-json 0 diff --imatrix $IMG $IM/mini.safetensors $IM/mini.B.gguf --json -j 1
# blk.0.* made with the legacy .dat, blk.1.* without a matrix (partial.dat has no entry for them);
# the artifact declares the full matrix (15 entries), hence the warning
t imatrix-diff-dat 0 diff --imatrix $IM/partial.dat $IM/mini.safetensors $IM/mini.C.gguf
# the wrong matrix for blk.1.*, and no matrix at all: the weighted tensors cannot match (exit only)
t imatrix-diff-wrong 1 diff --imatrix $IM/real-qwen2.imatrix.dat $IM/mini.safetensors $IM/mini.C.gguf
# without the matrix, mini.A's weighted tensors (it declares quantize.imatrix.*) get the imatrix verdict
t imatrix-diff-without 1 diff $IM/mini.safetensors $IM/mini.A.gguf
t imatrix-diff-unmatched 1 diff --imatrix tests/data/imatrix/unmatched.gguf $IM/mini.safetensors $IM/mini.A.gguf
t imatrix-diff-bad-length 3 diff --imatrix tests/data/imatrix/bad-length.gguf $IM/mini.safetensors $IM/mini.A.gguf
t imatrix-diff-escape 3 diff --imatrix tests/data/imatrix/bad-nan-name.dat $IM/mini.safetensors $IM/mini.A.gguf
t imatrix-diff-missing 4 diff --imatrix no/such/imatrix.gguf $IM/mini.safetensors $IM/mini.A.gguf

# ---------------------------------------------------------------- grid i-quants
# Source of truth: fixtures/iq_grid/mini.{D,E,F}.gguf hold tensors written by the real llama-quantize
# --imatrix real-qwen2.imatrix.gguf (tests/data/iq_grid/make_mini.c names the artifact of
# ../shared/oracle/real each was cut from): iq2_xxs, iq1_s (D), iq2_xs, iq2_s (E), iq1_m (F), so
# "identical" is agreement with llama-quantize.  Without the matrix, iq2_xxs and iq1_s cannot be
# produced (ggml refuses them) and are reported unsupported.
IQG=fixtures/iq_grid
t iqgrid-diff-D 0 diff --imatrix $IMG $IM/mini.safetensors $IQG/mini.D.gguf
t iqgrid-diff-E 0 diff --imatrix $IMG $IM/mini.safetensors $IQG/mini.E.gguf -j 2
t iqgrid-diff-F 0 diff --imatrix $IMG $IM/mini.safetensors $IQG/mini.F.gguf
t iqgrid-diff-D-without 1 diff $IM/mini.safetensors $IQG/mini.D.gguf
# quantize refuses what llama-quantize refuses (source of truth: ggml_quantize_requires_imatrix for
# iq2_xxs; llama-quantize's tensor_requires_imatrix for iq2_s), leaving nothing behind
t iqgrid-quantize-no-imatrix 2 quantize $IM/mini.safetensors --type iq2_xxs -o "$TMP/iqg.gguf"
t iqgrid-quantize-no-imatrix-llama 2 quantize $IM/mini.safetensors --type iq2_s -o "$TMP/iqg.gguf"
if [ -e "$TMP/iqg.gguf" ]; then no "iqgrid-quantize-no-imatrix" "output left behind"; fi
for f in tests/data/imatrix/bad-*; do
	one_line "imatrix-$(basename "$f")" 3 diff --imatrix "$f" $IM/mini.safetensors $IM/mini.A.gguf
done
one_line imatrix-quantize-bad 3 quantize $IM/mini.safetensors --type q4_K --imatrix tests/data/imatrix/bad-nan.dat -o "$TMP/x.gguf"
one_line imatrix-swap-bad 3 shape-swap $IM/mini.safetensors --imatrix tests/data/imatrix/bad-length.gguf
t imatrix-quantize 0 quantize $IM/mini.safetensors --type q4_K --imatrix $IMG -o "$TMP/im.gguf"
t imatrix-quantize-inspect 0 inspect "$TMP/im.gguf"
t imatrix-quantize-diff 0 diff --imatrix $IMG $IM/mini.safetensors "$TMP/im.gguf"
# blk.0.attn_k.weight of mini.B.gguf is q4_K from llama-quantize --imatrix: the same bytes
a=$("$bin" hash --format gguf-hash "$TMP/im.gguf" | grep 'blk\.0\.attn_k\.weight' | cut -d' ' -f1)
b=$("$bin" hash --format gguf-hash $IM/mini.B.gguf | grep 'blk\.0\.attn_k\.weight' | cut -d' ' -f1)
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "imatrix-quantize-bytes"
else no "imatrix-quantize-bytes" "'$a' vs '$b'"; fi
t imatrix-swap-json 1 shape-swap $IM/mini.safetensors --type q4_K --imatrix $IMG --json
# ---------------------------------------------------------------- hardening
# Source of truth: the contract in docs/quantaudit.1 (EXIT STATUS, FILES):
# an output that is an input is refused with 2 and the input is untouched;
# an unwritable output fails with 4 before any work; a stdout write error is
# one line and 4; an interrupted run leaves no temporary file behind.

# h_err NAME EXPECTED_EXIT PATTERN ARGS... : exit status, and one stderr line matching PATTERN
h_err() {
	local name=$1 want=$2 pat=$3
	shift 3
	"$bin" "$@" >"$TMP/out" 2>"$TMP/err"
	local rc=$? first
	first=$(head -n 1 "$TMP/err")
	if [ "$rc" = "$want" ] && printf '%s\n' "$first" | grep -q -E -- "$pat"; then
		ok "$name"
	else
		no "$name" "exit $rc (want $want): $(head -c 300 "$TMP/err")"
	fi
}

# same_file NAME FILE ARGS... : exit 2, and FILE keeps its bytes
same_file() {
	local name=$1 file=$2
	shift 2
	local before after
	before=$(sha256sum <"$file")
	"$bin" "$@" >"$TMP/out" 2>"$TMP/err"
	local rc=$?
	after=$(sha256sum <"$file")
	if [ "$rc" = 2 ] && [ "$before" = "$after" ] && grep -q 'same file as input' "$TMP/err" &&
	   [ -z "$(ls "$(dirname "$file")" | grep '\.tmp\.')" ]; then
		ok "$name"
	else
		no "$name" "exit $rc, input changed: $([ "$before" = "$after" ] && echo no || echo yes), $(head -c 200 "$TMP/err")"
	fi
}

mkdir -p "$TMP/same"
cp $REF "$TMP/same/ref.safetensors"
cp $CORRUPT "$TMP/same/art.gguf"
ln -sf "$TMP/same/ref.safetensors" "$TMP/same/link"
same_file same-hash "$TMP/same/ref.safetensors" hash "$TMP/same/ref.safetensors" -o "$TMP/same/ref.safetensors"
same_file same-hash-symlink "$TMP/same/ref.safetensors" hash "$TMP/same/ref.safetensors" -o "$TMP/same/link"
same_file same-quantize "$TMP/same/ref.safetensors" quantize "$TMP/same/ref.safetensors" --type q8_0 -o "$TMP/same/ref.safetensors"
same_file same-quantize-dir "$TMP/same/ref.safetensors" quantize "$TMP/same" --type q8_0 -o "$TMP/same/ref.safetensors"
same_file same-diff-report "$TMP/same/art.gguf" diff "$TMP/same/ref.safetensors" "$TMP/same/art.gguf" --report "$TMP/same/art.gguf"
same_file same-swap-report "$TMP/same/ref.safetensors" shape-swap "$TMP/same/ref.safetensors" --report "$TMP/same/ref.safetensors"
h_err out-empty 2 'output path is empty' quantize $REF --type q8_0 -o ""
h_err out-dir 4 ': is a directory$' quantize $REF --type q8_0 -o "$TMP"
h_err out-missing-dir 4 'no/x: cannot create a temporary file beside it: no such file or directory$' hash $REF -o "$TMP/no/x"
h_err help-nosuch 2 "^quantaudit: 'nosuch' is not a command$" help nosuch
h_err quantized-ref 2 'a reference must hold f32/f16/bf16 weights' diff $CORRUPT $CORRUPT

# ---------------------------------------------------------------- block index (manifest/2)
# hash --blocks -o writes MANIFEST.blocks beside MANIFEST: its size is what
# blockindex.h's format implies (32-byte header, 8 bytes per tensor, 8 bytes
# per block of the fixture, blocks counted from the JSON), and the JSON pins
# its size and SHA-256 (sha256sum, independent of the tool)
bi_check() {
	local name=$1 ok=$2 why=${3:-}
	if [ "$ok" = 1 ]; then ok "$name"; else no "$name" "$why"; fi
}
want_size=$(jq '32 + 8 * (.tensors | length) + 8 * ([.tensors[].blocks] | add)' "$TMP/m.json")
got_size=$(stat -c %s "$TMP/m.json.blocks")
bi_check blockindex-size "$([ "$want_size" = "$got_size" ] && [ "$(jq .block_index.size "$TMP/m.json")" = "$got_size" ] && echo 1)" \
	"block index is $got_size bytes, format implies $want_size"
bi_check blockindex-sha256 "$([ "$(jq -r .block_index.sha256 "$TMP/m.json")" = "$(sha256sum <"$TMP/m.json.blocks" | cut -d' ' -f1)" ] && echo 1)" \
	"manifest's block_index.sha256 is not the file's"
bi_check blockindex-no-inline "$([ "$(jq '[.tensors[] | has("block_sha256")] | any' "$TMP/m.json")" = false ] && echo 1)" \
	"the JSON still carries block digests"
# the first record of blk.0.ffn_down.weight is the first 8 bytes of its block 0's SHA-256 (from --blocks --json)
idx=$(jq '[.tensors[] | .name] | index("blk.0.ffn_down.weight")' "$TMP/m.json")
first=$(jq "[.tensors[:$idx][].blocks] | add // 0" "$TMP/m.json")
ntens=$(jq '.tensors | length' "$TMP/m.json")
rec=$(dd if="$TMP/m.json.blocks" bs=1 skip=$((32 + 8 * ntens + 8 * first)) count=8 2>/dev/null | od -An -tx1 | tr -d ' \n')
full=$("$bin" hash $CORRUPT --blocks --json | jq -r '.tensors[] | select(.name == "blk.0.ffn_down.weight") | .block_sha256[0]')
bi_check blockindex-record "$([ -n "$rec" ] && [ "$rec" = "${full:0:16}" ] && echo 1)" "record $rec, block digest $full"
# the inline form (stdout) and a /1 manifest (tests/data/manifest/v1-corrupt.json,
# written by the /1 writer of main at b8d7ba4) are still read
"$bin" hash $CORRUPT --blocks --json >"$TMP/inline.json"
"$bin" verify "$TMP/tampered.gguf" "$TMP/inline.json" >"$TMP/inline.out"
"$bin" verify "$TMP/tampered.gguf" "$TMP/m.json" >"$TMP/sidecar.out"
bi_check verify-inline-same "$(cmp -s "$TMP/sidecar.out" <(sed 's#inline.json#m.json#' "$TMP/inline.out") && echo 1)" \
	"inline block digests and the block index locate differently"
cp tests/data/manifest/v1-corrupt.json "$TMP/v1.json"
t verify-v1-ok 0 verify $CORRUPT "$TMP/v1.json"
t verify-v1-tampered 1 verify "$TMP/tampered.gguf" "$TMP/v1.json"
# hostile block indexes: each refused with exit 3 before any hashing
mkdir -p "$TMP/bi"
bi_case() {
	local name=$1 want=$2 pat=$3
	shift 3
	cp "$TMP/m.json" "$TMP/bi/m.json"
	cp "$TMP/m.json.blocks" "$TMP/bi/m.json.blocks"
	"$@"
	h_err "$name" "$want" "$pat" verify "$TMP/tampered.gguf" "$TMP/bi/m.json"
}
bi_case blockindex-missing 4 'block index: cannot open' rm "$TMP/bi/m.json.blocks"
bi_case blockindex-truncated 3 'has [0-9]+ bytes, the manifest says' truncate -s -8 "$TMP/bi/m.json.blocks"
flip() { printf '\x01' | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null; }
bi_case blockindex-record-flipped 3 "does not match the manifest's sha256 of it" flip "$TMP/bi/m.json.blocks" 5000
bi_case blockindex-bad-magic 3 'offset 0: not a block index' flip "$TMP/bi/m.json.blocks" 0
jq_edit() { jq "$1" "$TMP/bi/m.json" >"$TMP/bi/x.json" && mv "$TMP/bi/x.json" "$TMP/bi/m.json"; }
bi_case blockindex-path-escape 3 'must be a plain file name' jq_edit '.block_index.file = "../m.json.blocks"'
bi_case blockindex-digest-size 3 'digest_bytes must be 4..32' jq_edit '.block_index.digest_bytes = 64'
bi_case blockindex-other-manifest 3 'does not describe|block index: tensor' jq_edit '.tensors[0].blocks += 1'
# the block index is an output like any other: never over an input
cp $CORRUPT "$TMP/same/in.blocks"
same_file same-hash-blockindex "$TMP/same/in.blocks" hash "$TMP/same/in.blocks" --blocks -o "$TMP/same/in"
bi_check same-hash-blockindex-no-manifest "$([ ! -e "$TMP/same/in" ] && echo 1)" "the manifest was written"
mkdir -p "$TMP/empty"
h_err inspect-empty-dir 2 'no \.safetensors file in directory' inspect "$TMP/empty"

# escaping: names and strings from tests/data/cli/hostile-names.gguf (written
# by make-hostile.py from the GGUF specification) reach the terminal with
# control, C1 and invalid bytes as \xNN (escape.h's policy, checked by hand
# against the generator's bytes), and the JSON is valid, with U+FFFD and
# *_hex fields holding the exact bytes (hex checked against the generator)
H=tests/data/cli/hostile-names.gguf
t inspect-hostile 0 inspect $H
t inspect-hostile-json 0 inspect --json $H
if "$bin" inspect $H | grep -q "$(printf '\033')"; then
	no "inspect-hostile-no-esc" "an ESC byte reached stdout"
else
	ok "inspect-hostile-no-esc"
fi
if "$bin" inspect --json $H | jq -e '.metadata_raw[0].key_hex == "6261642e6b65792efffe" and
     .metadata_raw[1].value_hex == "636166c3201b5b33316d726564ff" and (.metadata | has("a\u0000x") and has("a\u0000y"))' >/dev/null 2>&1; then
	ok "inspect-hostile-json-hex"
else
	no "inspect-hostile-json-hex" "invalid JSON or hex fields wrong"
fi

# /dev/full: one line, exit 4, for command output and help text alike
if [ -w /dev/full ]; then
	for args in "--help" "help diff" "--version" "inspect $REF" "inspect --json $REF" "hash $REF" \
	            "quantize $REF --recipe Q4_K_M --dry-run" "diff $REF $CORRUPT --json" "shape-swap $REF"; do
		name="devfull-$(printf '%s' "$args" | cut -d' ' -f1-2 | tr -c 'a-z0-9\n-' '-')"
		# shellcheck disable=SC2086
		"$bin" $args >/dev/full 2>"$TMP/err"
		rc=$?
		if [ "$rc" = 4 ] && [ "$(wc -l <"$TMP/err")" = 1 ] &&
		   grep -q '^quantaudit: cannot write standard output: no space left on device$' "$TMP/err"; then
			ok "$name"
		else
			no "$name" "exit $rc: $(head -c 300 "$TMP/err")"
		fi
	done
fi

# SIGTERM mid-quantize: no OUT.tmp.* and no OUT left behind
mkdir -p "$TMP/sig"
"$bin" synth --arch qwen2 --hidden 512 --intermediate 2048 --heads 8 --kv-heads 2 --vocab 16000 --layers 2 \
	--seed 9 -o "$TMP/sig/model.safetensors" >/dev/null
"$bin" quantize "$TMP/sig/model.safetensors" --type q6_K -j 1 -o "$TMP/sig/out.gguf" 2>/dev/null &
qpid=$!
seen=0
for _ in $(seq 1 400); do
	if ls "$TMP/sig" | grep -q '^out\.gguf\.tmp\.'; then seen=1; break; fi
	sleep 0.025
done
kill -TERM $qpid 2>/dev/null
wait $qpid
rc=$?
left=$(ls "$TMP/sig" | grep -c '^out\.gguf')
if [ $seen = 1 ] && [ "$rc" = 143 ] && [ "$left" = 0 ]; then
	ok "sigterm-quantize"
else
	no "sigterm-quantize" "tmp seen $seen, exit $rc (want 143), $left out.gguf* files left"
fi

# every golden file states what pins it: golden/SOURCES has a line for it
uncovered=""
while IFS= read -r g; do
	covered=0
	while read -r pat _; do
		case "$pat" in '#'* | '') continue ;; esac
		# shellcheck disable=SC2254
		case "$g" in $pat) covered=1; break ;; esac
	done <"$golden/SOURCES"
	[ $covered = 1 ] || uncovered="$uncovered $g"
done < <(ls "$golden" | grep -v '^SOURCES$')
if [ -z "$uncovered" ]; then ok "golden-sources"
else no "golden-sources" "no line in golden/SOURCES for$uncovered"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
