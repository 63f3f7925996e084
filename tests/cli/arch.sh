#!/bin/bash
# tests/cli/arch.sh - the dense architectures (llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3) against
# artifacts written by the real llama-quantize.
#
# Sources of truth, case by case:
#  - synth-ARCH: the SHA-256 of the checkpoint the artifacts were made from (fixtures/arch/SHA256SUMS, recorded
#    by fixtures/tools/make-arch-fixtures.sh when it made them): the references are rebuilt here with synth
#    rather than stored, so synth must still write the same bytes.
#  - diff-*: fixtures/arch/*.gguf, written by the real llama-quantize (llama.cpp of ~/.cache/llama-cpp-ref, see
#    fixtures/README.md) from those checkpoints converted as llama.cpp's converter converts them; every tensor
#    must be identical and the recipe confirmed.
#  - reproduce-*: the same artifacts, rebuilt byte for byte from the BF16 GGUF llama-quantize read.
#  - quantize-*: quantaudit quantize of each checkpoint under Q4_K_M must give every tensor the bytes the real
#    llama-quantize wrote (fixtures/arch/ARCH.Q4_K_M.gguf), compared by SHA-256 per tensor (names, permutation,
#    Gemma's norm + 1 and fusing all go through quantize's streaming path too).
#  - needs-imatrix: the types of the IQ2_XXS artifact (iq2_xxs tensors are the ones ggml makes only with a
#    matrix); without --imatrix exactly those get the verdict, and none is unsupported-type.
#  - unpermuted / relabelled: the llama artifact against its checkpoint relabelled qwen2 (no q/k permutation):
#    attn_q and attn_k must then not be identical (the permutation is what made them match).
#  - unknown-arch: the exit-code contract (2) and the list of known architectures.
#  - llama31, phi3long, gemma3tok (in the loops above): checkpoints with what llama.cpp's converter generates or
#    cuts (rope_freqs from a llama3 rope_scaling, phi3's long/short rope factors, gemma3's token_embd cut to a
#    50-token tokenizer.json), converted by fixtures/tools/hf2gguf.py (rope_freqs by the converter's own torch
#    expression) and quantized by the real llama-quantize.
#  - generated-needed / uncut-needed: without the rope_scaling (or the tokenizer.json) the same artifacts no
#    longer pass: the generated tensors are extra, the cut embedding a shape-mismatch.
#  - rope-refused: a longrope list of the wrong length is refused as the converter refuses it (exit 3).
. "$(dirname "$0")/lib.sh"
fx=$top/fixtures/arch

# the shapes of fixtures/tools/make-arch-fixtures.sh
. "$top/fixtures/tools/arch-shapes.sh"

for a in llama mistral qwen2 qwen3 gemma2 gemma3 phi3 llama31 phi3long gemma3tok; do
	mkdir -p "$TMP/$a"
	# shellcheck disable=SC2046
	"$bin" synth --arch "$(arch_of "$a")" $(synth_opts "$a") -j 2 -o "$TMP/$a/model.safetensors" >/dev/null
	want=$(grep " $a/model.safetensors\$" "$fx/SHA256SUMS" | cut -d' ' -f1)
	got=$(sha256sum "$TMP/$a/model.safetensors" | cut -d' ' -f1)
	if [ -n "$want" ] && [ "$got" = "$want" ]; then ok "synth-$a"; else no "synth-$a" "sha256 $got, want $want"; fi
done

# every artifact: identical, recipe confirmed
for art in "$fx"/*.gguf; do
	base=$(basename "$art" .gguf)
	a=${base%%.*}
	case $base in *.BF16 | "$a.imatrix") continue ;; esac
	opt=()
	case $base in *.imatrix) opt=(--imatrix "$fx/$a.imatrix.gguf") ;; esac
	"$bin" diff "$TMP/$a" "$art" "${opt[@]}" --json -j 2 >"$TMP/j" 2>"$TMP/err"
	rc=$?
	got=$(jget "$TMP/j" '(j["verdict"], j["summary"]["identical"] == j["summary"]["tensors"], j["recipe"]["matches"], j["recipe"]["name"])' 2>&1)
	recipe=${base#*.}
	recipe=${recipe%.imatrix}
	if [ "$rc" = 0 ] && [ "$got" = "('pass', True, True, '$recipe')" ]; then ok "diff-$base"
	else no "diff-$base" "exit $rc: $got $(head -c 200 "$TMP/err")"; fi
done

# byte for byte from the BF16 GGUF llama-quantize read
for art in "$fx"/gemma3.*.gguf; do
	base=$(basename "$art" .gguf)
	case $base in gemma3.BF16 | gemma3.imatrix) continue ;; esac
	opt=()
	case $base in *.imatrix) opt=(--imatrix "$fx/gemma3.imatrix.gguf") ;; esac
	"$bin" reproduce "$fx/gemma3.BF16.gguf" "$art" "${opt[@]}" -j 2 >"$TMP/out" 2>"$TMP/err"
	rc=$?
	if [ "$rc" = 0 ]; then ok "reproduce-$base"; else no "reproduce-$base" "exit $rc: $(head -c 300 "$TMP/out")"; fi
done

# quantize from the safetensors checkpoint: the real artifact's tensor bytes
tdig() { python3 -c "import json,sys; print('\n'.join(sorted(t['name'] + ' ' + t['sha256'] for t in json.load(open(sys.argv[1]))['tensors'])))" "$1"; }
for a in llama mistral qwen2 qwen3 gemma2 gemma3 phi3 llama31 phi3long gemma3tok; do
	"$bin" quantize "$TMP/$a" --recipe Q4_K_M -j 2 -o "$TMP/q.gguf" >/dev/null 2>"$TMP/err" &&
		"$bin" hash "$TMP/q.gguf" --json >"$TMP/h1" && "$bin" hash "$fx/$a.Q4_K_M.gguf" --json >"$TMP/h2"
	rc=$?
	if [ "$rc" = 0 ] && [ "$(tdig "$TMP/h1")" = "$(tdig "$TMP/h2")" ]; then ok "quantize-$a"
	else no "quantize-$a" "exit $rc: $(head -c 200 "$TMP/err") $(diff <(tdig "$TMP/h1") <(tdig "$TMP/h2") | head -4)"; fi
done

# what makes the generated and cut tensors match: without rope_scaling / the tokenizer they do not
for a in llama31 phi3long gemma3tok; do
	mkdir -p "$TMP/plain-$a"
	cp "$TMP/$a/model.safetensors" "$TMP/plain-$a/"
	python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c.pop('rope_scaling', None); json.dump(c, open(sys.argv[2], 'w'))" \
		"$TMP/$a/config.json" "$TMP/plain-$a/config.json"
	"$bin" diff "$TMP/plain-$a" "$fx/$a.Q4_K_M.gguf" --json -j 2 >"$TMP/j" 2>/dev/null
	rc=$?
	got=$(jget "$TMP/j" 'sorted(t["name"] + ":" + t["verdict"] for t in j["tensors"] if t["verdict"] != "identical")')
	case $a in
	llama31) want="['rope_freqs.weight:extra']" ;;
	phi3long) want="['rope_factors_long.weight:extra', 'rope_factors_short.weight:extra']" ;;
	gemma3tok) want="['token_embd.weight:shape-mismatch']" ;;
	esac
	if [ "$rc" = 1 ] && [ "$got" = "$want" ]; then ok "generated-needed-$a"; else no "generated-needed-$a" "exit $rc: $got"; fi
done
# gemma3 without a tokenizer: not cut, and the reference says why
got=$(jget "$TMP/j" '[t["reference_name"] for t in j["tensors"] if t["name"] == "token_embd.weight"]')
if [ "$got" = "[\"model.embed_tokens.weight (not cut to the tokenizer's size: no tokenizer.model or tokenizer.json beside config.json)\"]" ]
then ok uncut-says-why; else no uncut-says-why "$got"; fi

# a longrope list of the wrong length: the converter refuses it, so does the reference reader (exit 3)
mkdir -p "$TMP/badrope"
cp "$TMP/phi3long/model.safetensors" "$TMP/badrope/"
python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['rope_scaling']['long_factor'].pop(); json.dump(c, open(sys.argv[2], 'w'))" \
	"$TMP/phi3long/config.json" "$TMP/badrope/config.json"
"$bin" diff "$TMP/badrope" "$fx/phi3long.Q4_K_M.gguf" >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" = 3 ] && grep -q "long_factor (15) and short_factor (16) must both have rope_dims / 2 = 16 entries" "$TMP/err"
then ok rope-refused; else no rope-refused "exit $rc: $(cat "$TMP/err")"; fi

# needs-imatrix: iq2_xxs without the matrix
"$bin" diff "$TMP/llama" "$fx/llama.IQ2_XXS.imatrix.gguf" --json -j 2 >"$TMP/j" 2>/dev/null
rc=$?
got=$(jget "$TMP/j" 'sorted(t["name"] for t in j["tensors"] if t["verdict"] == "needs-imatrix") == sorted(t["name"] for t in j["tensors"] if t["type"] == "iq2_xxs") and j["summary"]["needs-imatrix"] > 0 and j["summary"]["unsupported-type"] == 0')
if [ "$rc" = 1 ] && [ "$got" = True ]; then ok needs-imatrix; else no needs-imatrix "exit $rc: $got"; fi
"$bin" diff "$TMP/llama" "$fx/llama.IQ2_XXS.imatrix.gguf" -j 2 >"$TMP/out" 2>/dev/null
if grep -q 'only with an importance matrix (verdict needs-imatrix: give --imatrix' "$TMP/out"; then ok needs-imatrix-text
else no needs-imatrix-text "$(grep -i imatrix "$TMP/out" | head -3)"; fi

# the permutation is what makes llama's q/k match: relabelled qwen2, they no longer do
mkdir -p "$TMP/relabel"
cp "$TMP/llama/model.safetensors" "$TMP/relabel/"
sed 's/"LlamaForCausalLM"/"Qwen2ForCausalLM"/; s/"model_type": "llama"/"model_type": "qwen2"/' \
	"$TMP/llama/config.json" >"$TMP/relabel/config.json"
"$bin" diff "$TMP/relabel" "$fx/llama.Q4_K_M.gguf" --json -j 2 >"$TMP/j" 2>/dev/null
rc=$?
got=$(jget "$TMP/j" 'sorted(t["name"] for t in j["tensors"] if t["verdict"] != "identical")')
if [ "$rc" = 1 ] && [ "$got" = "['blk.0.attn_k.weight', 'blk.0.attn_q.weight', 'blk.1.attn_k.weight', 'blk.1.attn_q.weight']" ]
then ok unpermuted-relabelled; else no unpermuted-relabelled "exit $rc: $got"; fi

# an architecture the table does not know: exit 2, the known ones listed
mkdir -p "$TMP/falcon"
cp "$TMP/llama/model.safetensors" "$TMP/falcon/"
printf '{"architectures": ["FalconForCausalLM"], "model_type": "falcon", "hidden_size": 256}\n' >"$TMP/falcon/config.json"
"$bin" diff "$TMP/falcon" "$fx/llama.Q4_K_M.gguf" >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" = 2 ] && grep -q "names architecture 'FalconForCausalLM', which quantaudit does not know (known: llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3" "$TMP/err"
then ok unknown-arch-diff; else no unknown-arch-diff "exit $rc: $(cat "$TMP/err")"; fi
"$bin" synth --arch falcon --hidden 256 --intermediate 64 --heads 2 --kv-heads 1 --vocab 64 -o "$TMP/f.safetensors" >/dev/null 2>"$TMP/err"
rc=$?
if [ "$rc" = 2 ] && grep -q "unknown architecture 'falcon' (llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3" "$TMP/err"
then ok unknown-arch-synth; else no unknown-arch-synth "exit $rc: $(cat "$TMP/err")"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
