#!/bin/bash
# tests/cli/reproduce.sh - quantaudit reproduce and quantize's llama-quantize options.
#
# Sources of truth, case by case:
#  - real-*: the files the real llama-quantize wrote (../shared/oracle/real, or $QA_ORACLE_REAL) and
#    the SHA-256 sums published beside them (its README gives the commands); skipped (not failed) where
#    that folder is absent: those files are megabytes, too large for fixtures/.
#  - flip-*: where a byte was flipped, and which region holds that offset according to an independent
#    GGUF header walk written here in Python (not quantaudit's reader or writer).
#  - infer-*: the options quantize was given; reproduce must recover options that rebuild the file.
#  - usage and malformed cases: the exit-code contract.
. "$(dirname "$0")/lib.sh"
real=${QA_ORACLE_REAL:-$top/../shared/oracle/real}
[ -d "$real" ] || real=/work/shared/oracle/real

# regions FILE: "kind start end name" for every region of a GGUF v3 header, walked independently
regions() {
	python3 - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
p = 0
def u32():
    global p; v = struct.unpack_from("<I", b, p)[0]; p += 4; return v
def u64():
    global p; v = struct.unpack_from("<Q", b, p)[0]; p += 8; return v
def s():
    global p; n = u64(); v = b[p:p + n].decode("utf-8", "replace"); p += n; return v
size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def val(t):
    global p
    if t == 8: s()
    elif t == 9:
        et = u32(); n = u64()
        for _ in range(n): val(et)
    else: p += size[t]
assert b[:4] == b"GGUF"; p = 8
nt = u64(); nk = u64()
print("header 0 24 header")
for _ in range(nk):
    st = p; k = s(); val(u32()); print("kv %d %d %s" % (st, p, k))
ts = []
for _ in range(nt):
    st = p; name = s(); nd = u32(); ne = [u64() for _ in range(nd)]; ty = u32(); off = u64()
    print("tensor-info %d %d %s" % (st, p, name)); ts.append((name, off))
data = (p + 31) // 32 * 32
print("padding %d %d header-padding" % (p, data))
offs = [o for _, o in ts] + [len(b) - data]
for i, (name, off) in enumerate(ts):
    print("tensor-data+padding %d %d %s" % (data + off, data + offs[i + 1], name))
PY
}

BF=$TMP/ref.bf16.gguf
# ---------------------------------------------------------------- a GGUF reference and artifacts
run make-ref 0 quantize fixtures/models/micro-qwen2.safetensors --type bf16 -o "$BF"
run make-q4km 0 quantize "$BF" --recipe Q4_K_M -o "$TMP/a.gguf"
run reproduce-self 0 reproduce "$BF" "$TMP/a.gguf"
"$bin" reproduce "$BF" "$TMP/a.gguf" -o "$TMP/again.gguf" >/dev/null 2>&1
if cmp -s "$TMP/a.gguf" "$TMP/again.gguf"; then ok reproduce-o-writes-the-file; else no reproduce-o-writes-the-file "differs"; fi
run reproduce-o-input 2 reproduce "$BF" "$TMP/a.gguf" -o "$TMP/a.gguf"
sha=$(sha256sum "$TMP/a.gguf" | cut -d' ' -f1)
"$bin" reproduce "$BF" "$TMP/a.gguf" --artifact-sha256 "$sha" --json >"$TMP/j" 2>/dev/null
if [ "$(jget "$TMP/j" 'j["result"], j["artifact"]["body_bytes_read"]')" = "reproduced 0" ]; then
	ok reproduce-given-digest-reads-no-body
else no reproduce-given-digest-reads-no-body "$(jget "$TMP/j" 'j["result"], j["artifact"]["body_bytes_read"]')"; fi
run reproduce-given-wrong-digest 1 reproduce "$BF" "$TMP/a.gguf" --artifact-sha256 "$(printf '%064d' 0)" --no-explain

# ---------------------------------------------------------------- one byte anywhere
regions "$TMP/a.gguf" >"$TMP/regions"
# one offset in the middle of each of a sample of regions of every kind
pick() { awk -v k="$1" '$1 == k && $3 > $2 + 1 { print int(($2 + $3) / 2), $4 }' "$TMP/regions" | sed -n "$2p"; }
for spec in "header 1" "kv 1" "kv 3" "tensor-info 1" "tensor-info 9" "padding 1" "tensor-data+padding 1" "tensor-data+padding 14"; do
	set -- $spec
	read -r off name <<<"$(pick "$1" "$2")"
	[ -n "${off:-}" ] || { no "flip-$1-$2" "no such region"; continue; }
	[ "$1" = header ] && off=9   # the tensor count
	cp "$TMP/a.gguf" "$TMP/f.gguf"
	b=$(od -An -tu1 -j "$off" -N1 "$TMP/f.gguf" | tr -d ' ')
	printf "$(printf '\\%03o' $(( (b + 1) % 256 )))" | dd of="$TMP/f.gguf" bs=1 seek="$off" conv=notrunc 2>/dev/null
	"$bin" reproduce "$BF" "$TMP/f.gguf" --recipe Q4_K_M --json --no-explain >"$TMP/j" 2>"$TMP/err"
	rc=$?
	got=$(jget "$TMP/j" 'j["first_difference"]["offset"], j["first_difference"]["region"], j["first_difference"]["name"]' 2>/dev/null)
	want_kind=$1
	[ "$1" = tensor-data+padding ] && want_kind=tensor-data
	[ "$1" = tensor-info ] || [ "$1" = kv ] || [ "$1" = tensor-data+padding ] || name=
	case "$got" in
	"$off $want_kind $name"*) [ "$rc" = 1 ] && ok "flip-$1-$2 (offset $off)" || no "flip-$1-$2" "exit $rc" ;;
	*) no "flip-$1-$2" "flipped offset $off ($want_kind $name), reported: $got $(head -c 200 "$TMP/err")" ;;
	esac
done
# a byte past the end, and a truncated file
cp "$TMP/a.gguf" "$TMP/f.gguf"; printf 'x' >>"$TMP/f.gguf"
"$bin" reproduce "$BF" "$TMP/f.gguf" --json --no-explain >"$TMP/j" 2>/dev/null
size=$(stat -c %s "$TMP/a.gguf")
if [ "$(jget "$TMP/j" 'j["first_difference"]["offset"]')" = "$size" ]; then ok flip-appended; else no flip-appended "$(cat "$TMP/j" | head -c 300)"; fi
head -c $((size - 100)) "$TMP/a.gguf" >"$TMP/f.gguf"
"$bin" reproduce "$BF" "$TMP/f.gguf" --recipe Q4_K_M --json --no-explain >"$TMP/j" 2>/dev/null
if [ "$(jget "$TMP/j" 'j["first_difference"]["offset"]')" = "$((size - 100))" ]; then ok flip-truncated; else no flip-truncated "$(head -c 300 "$TMP/j")"; fi
# a changed value: the metadata audit names the key and the explanation runs
cp "$TMP/a.gguf" "$TMP/f.gguf"
read -r off name <<<"$(awk '$1 == "kv" && $4 == "general.architecture" { print $3 - 1, $4 }' "$TMP/regions")"
printf 'X' | dd of="$TMP/f.gguf" bs=1 seek="$off" conv=notrunc 2>/dev/null
"$bin" reproduce "$BF" "$TMP/f.gguf" --json >"$TMP/j" 2>/dev/null
if [ "$(jget "$TMP/j" '[(k["key"], k["difference"]) for k in j["metadata"]], j["diff"] is not None')" = "[('general.architecture', 'changed')] True" ]; then
	ok flip-kv-audit; else no flip-kv-audit "$(jget "$TMP/j" 'j["metadata"]')"; fi

# ---------------------------------------------------------------- inferred options
infer() {
	local name=$1
	shift
	if ! "$bin" quantize "$BF" --recipe Q4_K_M "$@" -o "$TMP/o.gguf" 2>"$TMP/err"; then no "$name" "quantize failed: $(cat "$TMP/err")"; return; fi
	"$bin" reproduce "$BF" "$TMP/o.gguf" --json >"$TMP/j" 2>"$TMP/err"
	local rc=$? res
	res=$(jget "$TMP/j" 'j["result"], j["recipe"]["options"]' 2>/dev/null)
	if [ "$rc" = 0 ]; then ok "$name ($res)"; else no "$name" "exit $rc: $res $(head -c 200 "$TMP/err")"; fi
	if [ "$rc" = 0 ] && ! "$bin" reproduce "$BF" "$TMP/o.gguf" --no-infer --no-explain >/dev/null 2>&1; then
		ok "$name without inference differs"
	else
		no "$name without inference differs" "reproduced without the options"
	fi
}
infer infer-pure --pure
infer infer-output --output-tensor-type q8_0
infer infer-token --token-embedding-type q8_0
infer infer-leave --leave-output-tensor
infer infer-tensor-type --tensor-type attn_v=q8_0
infer infer-tensor-type-layer --tensor-type 'blk\.1\.ffn_down=q5_0'
infer infer-combined --pure --output-tensor-type q8_0 --token-embedding-type q6_K
infer infer-kv --override-kv general.name=str:renamed --override-kv qwen2.context_length=int:2048
infer infer-kv-float --override-kv qwen2.rope.freq_base=float:500000 --override-kv x.flag=bool:true
# given options are used as given
"$bin" quantize "$BF" --recipe Q4_K_M --tensor-type attn_v=q8_0 -o "$TMP/o.gguf" 2>/dev/null
run given-options 0 reproduce "$BF" "$TMP/o.gguf" --no-infer --tensor-type attn_v=q8_0

# ---------------------------------------------------------------- llama-quantize's override flags
# Source of truth: fixtures/overrides/cases.txt, the SHA-256 and size of each file the real
# llama-quantize wrote with those flags from the reference below (fixtures/overrides/make.sh).
# quantize with the same flags must write a file with that digest, i.e. llama-quantize's file
# itself; reproduce must then prove that file, inferring the flags.
OV=fixtures/overrides
mkdir -p "$TMP/ov/syn"
"$bin" synth --arch qwen2 --hidden 256 --intermediate 256 --heads 4 --kv-heads 1 --vocab 32 --layers 1 \
	-o "$TMP/ov/syn/model.safetensors" >/dev/null 2>&1
"$bin" quantize "$TMP/ov/syn/model.safetensors" --type bf16 -o "$TMP/ov/tiny-qwen2.BF16.gguf" >/dev/null 2>&1
OVREF=$TMP/ov/tiny-qwen2.BF16.gguf
while read -r sha size name recipe flags; do
	case "$sha" in '#'*) continue ;; esac
	if [ "$recipe" = BF16 ]; then
		# the reference llama-quantize read: if synth or the bf16 writer changed, say so
		[ "$(sha256sum "$OVREF" | cut -c1-64)" = "$sha" ] && ok "override-reference" ||
			no override-reference "$OVREF is not the reference the artifacts were made from"
		continue
	fi
	out=$TMP/ov/$name
	eval "set -- $flags"
	"$bin" quantize "$OVREF" --recipe "$recipe" "$@" -o "$out" >/dev/null 2>"$TMP/err"
	got="$(sha256sum "$out" 2>/dev/null | cut -c1-64) $(stat -c %s "$out" 2>/dev/null)"
	if [ "$got" = "$sha $size" ]; then ok "override-quantize $name"
	else no "override-quantize $name" "sha256 and size $got, llama-quantize's $sha $size $(head -c 200 "$TMP/err")"; continue; fi
	# the file is now llama-quantize's own (same SHA-256): prove it with nothing but the reference
	"$bin" reproduce "$OVREF" "$out" --json >"$TMP/j" 2>"$TMP/err"
	rc=$?
	res=$(jget "$TMP/j" 'j["result"], j["reproduction"]["sha256"]' 2>/dev/null)
	if [ "$rc" = 0 ] && [ "$res" = "reproduced $sha" ]; then ok "override-reproduce $name ($(jget "$TMP/j" 'j["recipe"]["options"]'))"
	else no "override-reproduce $name" "exit $rc: $res $(head -c 200 "$TMP/err")"; fi
done <"$OV/cases.txt"
# llama-quantize lower-cases a pattern before compiling it, so \D is \d there (checked above by
# tensor-order's BLK\.\D\.ATTN_V); patterns std::regex reads but this build cannot are refused
run tensor-type-lookahead 2 quantize "$OVREF" --recipe Q4_K_M --tensor-type '(?=attn)attn_q=q8_0' -o "$TMP/x.gguf"
run tensor-type-hex-escape 2 quantize "$OVREF" --recipe Q4_K_M --tensor-type 'attn\x5fq=q8_0' -o "$TMP/x.gguf"

# ---------------------------------------------------------------- the real llama-quantize's files
if [ -f "$real/real-qwen2.BF16.gguf" ]; then
	# with and without importance matrices (.gguf and legacy .dat, found beside the artifact by the
	# name quantize.imatrix.file declares), the i-quant and ternary recipes included
	for n in Q4_K_M Q4_K_M.imatrix Q4_K_M.imatrix-dat Q5_K_M.imatrix Q6_K.imatrix Q3_K_M.imatrix \
	         Q2_K.imatrix Q4_0.imatrix Q8_0.imatrix IQ4_NL.imatrix IQ4_XS.imatrix IQ3_XXS.imatrix \
	         IQ3_XS.imatrix IQ3_S.imatrix IQ3_M.imatrix IQ2_XXS.imatrix IQ2_XS.imatrix IQ2_S.imatrix \
	         IQ2_M.imatrix IQ1_S.imatrix IQ1_M.imatrix TQ1_0.imatrix TQ2_0.imatrix; do
		a=real-qwen2.$n.gguf
		"$bin" reproduce "$real/real-qwen2.BF16.gguf" "$real/$a" --json >"$TMP/j" 2>"$TMP/err"
		rc=$?
		want=$(grep " $a\$" "$real/SHA256SUMS" | cut -d' ' -f1)
		got=$(jget "$TMP/j" 'j["reproduction"]["sha256"]' 2>/dev/null)
		if [ "$rc" = 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]; then ok "real-$a"; else no "real-$a" "exit $rc, sha256 $got, published $want $(head -c 200 "$TMP/err")"; fi
	done
	# made from a BF16 whose blk.1.ffn_down.weight held W transposed: the first difference is there
	"$bin" reproduce "$real/real-qwen2.BF16.gguf" "$real/real-qwen2.Q4_K_M.imatrix.transposed.gguf" --json >"$TMP/j" 2>"$TMP/err"
	rc=$?
	got=$(jget "$TMP/j" 'j["first_difference"]["region"], j["first_difference"]["name"], [t["name"] for t in j["diff"]["tensors"] if t["verdict"] != "identical"]' 2>/dev/null)
	if [ "$rc" = 1 ] && [ "$got" = "tensor-data blk.1.ffn_down.weight ['blk.1.ffn_down.weight']" ]; then ok real-transposed-located; else no real-transposed-located "exit $rc: $got"; fi
	# the matrix is required, and looked up beside the artifact
	cp "$real/real-qwen2.Q4_K_M.imatrix.gguf" "$TMP/lonely.gguf"
	run real-imatrix-not-found 2 reproduce "$real/real-qwen2.BF16.gguf" "$TMP/lonely.gguf"
	run real-imatrix-given 0 reproduce "$real/real-qwen2.BF16.gguf" "$TMP/lonely.gguf" --imatrix "$real/real-qwen2.imatrix.gguf" --no-explain
else
	echo "skip  real-*: $real not present"
fi

# ---------------------------------------------------------------- diff's metadata audit
# source of truth: the config.json synth writes beside its checkpoint, and the keys changed with --override-kv
mkdir -p "$TMP/syn"
"$bin" synth --arch qwen2 --hidden 256 --intermediate 256 --heads 4 --kv-heads 2 --vocab 64 --layers 1 -o "$TMP/syn/model.safetensors" >/dev/null 2>&1
"$bin" quantize "$TMP/syn" --recipe Q8_0 -o "$TMP/s.gguf" 2>/dev/null
run diff-hyper-clean 0 diff "$TMP/syn" "$TMP/s.gguf"
"$bin" quantize "$TMP/syn" --recipe Q8_0 --override-kv qwen2.rope.freq_base=float:10000 --override-kv qwen2.attention.head_count=int:8 -o "$TMP/s2.gguf" 2>/dev/null
"$bin" diff "$TMP/syn" "$TMP/s2.gguf" --json >"$TMP/j" 2>/dev/null
rc=$?
got=$(jget "$TMP/j" 'sorted((m["key"], m["finding"]) for m in j["metadata"])')
if [ "$rc" = 1 ] && [ "$got" = "[('qwen2.attention.head_count', True), ('qwen2.rope.freq_base', True)]" ]; then ok diff-hyper-rope-heads; else no diff-hyper-rope-heads "exit $rc: $got"; fi
"$bin" quantize "$TMP/syn" --recipe Q8_0 --override-kv qwen2.block_count=int:3 --override-kv qwen2.context_length=int:4096 -o "$TMP/s3.gguf" 2>/dev/null
"$bin" diff "$TMP/syn" "$TMP/s3.gguf" --json >"$TMP/j" 2>/dev/null
got=$(jget "$TMP/j" 'sorted(m["key"] for m in j["metadata"])')
[ "$got" = "['qwen2.block_count', 'qwen2.context_length']" ] && ok diff-hyper-layers-context || no diff-hyper-layers-context "$got"
# a GGUF reference: llama-quantize's keys; a renamed model is listed, not a finding
"$bin" quantize "$BF" --recipe Q4_K_M --override-kv general.name=str:renamed -o "$TMP/n.gguf" 2>/dev/null
"$bin" diff "$BF" "$TMP/n.gguf" --json >"$TMP/j" 2>/dev/null
rc=$?
got=$(jget "$TMP/j" '[(m["key"], m["difference"], m["finding"]) for m in j["metadata"]]')
if [ "$rc" = 0 ] && [ "$got" = "[('general.name', 'extra', False)]" ]; then ok diff-gguf-kv-listed; else no diff-gguf-kv-listed "exit $rc: $got"; fi
"$bin" quantize "$BF" --recipe Q4_K_M --override-kv qwen2.attention.head_count_kv=int:2 -o "$TMP/n.gguf" 2>/dev/null
run diff-gguf-kv-finding 1 diff "$BF" "$TMP/n.gguf"

# ---------------------------------------------------------------- usage and malformed input
run usage-help 0 reproduce --help
run usage-missing 2 reproduce "$BF"
run usage-safetensors-ref 2 reproduce fixtures/models/micro-qwen2.safetensors "$TMP/a.gguf"
run usage-recipe 2 reproduce "$BF" "$TMP/a.gguf" --recipe Q4_K_XL
run usage-digest 2 reproduce "$BF" "$TMP/a.gguf" --artifact-sha256 abc
run usage-tensor-type 2 reproduce "$BF" "$TMP/a.gguf" --tensor-type attn_v
run usage-override-kv 2 reproduce "$BF" "$TMP/a.gguf" --override-kv general.name=blob:x
run malformed-artifact 3 reproduce "$BF" tests/data/gguf/bad-magic.gguf
run missing-artifact 4 reproduce "$BF" "$TMP/no-such.gguf"
run quantize-bad-override 2 quantize "$BF" --recipe Q4_K_M --override-kv general.name=int:12x -o "$TMP/x.gguf"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
