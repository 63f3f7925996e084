#!/bin/bash
# tests/cli/moe.sh - mixture-of-experts checkpoints: synth, the converter's expert
# stacking, diff and reproduce of real llama-quantize artifacts, the per-expert layout audit.
#
# Sources of truth, case by case:
#  - fixtures/moe/*.gguf were written by the real llama-quantize (fixtures/moe/make.sh, README)
#    from quantaudit synth checkpoints converted by fixtures/tools/hf2gguf.py; SHA256SUMS is what that
#    run wrote.  diff of each against the same synth checkpoint (HF per-expert or fused form)
#    passes only if synth, the expert stacking and the quantizers agree with those files.
#  - reproduce-*: the artifacts' own bytes (REPRODUCED means quantaudit's output is the file).
#  - transposed-*: fixtures/moe/make.sh wrote experts 2 and 5 of blk.1.ffn_down_exps.weight
#    transposed before llama-quantize ran; nothing else differs.
#  - *-D-*: moe-D is gpt-oss in its published MXFP4 form (synth --mxfp4); llama.cpp's converter
#    repacks the U8 blocks and scales into ggml mxfp4 (hf2gguf.py), llama-quantize copies them under
#    MXFP4_MOE and refuses Q8_0 (make.sh checks that refusal).  diff passes only if our repacking gives
#    llama.cpp's bytes: a re-quantization of the dequantized values differs in 445 of 512 blocks of
#    blk.0.ffn_gate_exps.weight (gguf-py's quantize, at the time the fixture was made).
#  - *-E-*: moe-E is qwen2moe; llama-quantize writes the shared-expert gate [1, 256] of the checkpoint
#    (ne [256, 1] in the converted file) as [256] (ggml_n_dims drops trailing 1s), which diff must pair.
#  - imatrix-*: moe-A.IQ2_XS.imatrix.gguf and the Q4_K_M digest in unkept.sha256 are llama-quantize's
#    output with moe-A.imatrix.gguf (synth_imatrix.py; per-expert in_sum2 [256, 2], counts [1, 2]) from
#    quantaudit's own BF16 conversion of A, whose digest unkept.sha256 also holds.  The swapped matrix
#    holds the two experts' rows exchanged: with it the expert tensors must diverge and nothing else.
#  - usage and malformed cases: the exit-code contract.
. "$(dirname "$0")/lib.sh"
fx=$top/fixtures/moe

# The synth options of fixtures/moe/make.sh.
A="--arch qwen3moe --hidden 256 --intermediate 512 --heads 2 --kv-heads 1 --head-dim 64 --vocab 256 --layers 1 --experts 2 --experts-used 1 --expert-ffn 256 --seed 11"
B="--arch gpt-oss --hidden 64 --intermediate 64 --heads 2 --kv-heads 1 --head-dim 32 --vocab 128 --layers 2 --experts 4 --experts-used 2 --seed 12"
C="--arch qwen3moe --hidden 64 --intermediate 128 --heads 2 --kv-heads 1 --head-dim 32 --vocab 128 --layers 2 --experts 8 --experts-used 2 --expert-ffn 96 --seed 13"
D="--arch gpt-oss --hidden 64 --intermediate 64 --heads 2 --kv-heads 1 --head-dim 32 --vocab 128 --layers 2 --experts 4 --experts-used 2 --seed 14 --mxfp4"
E="--arch qwen2moe --hidden 256 --intermediate 256 --heads 2 --kv-heads 1 --head-dim 64 --vocab 128 --layers 1 --experts 4 --experts-used 2 --expert-ffn 64 --seed 15"

(cd "$fx" && sha256sum -c --quiet SHA256SUMS) >"$TMP/sums" 2>&1 && ok fixtures-sha256 || no fixtures-sha256 "$(cat "$TMP/sums")"

for m in A B C D E; do
	mkdir -p "$TMP/$m"
	eval "opts=\$$m"
	# shellcheck disable=SC2086
	run "synth-$m" 0 synth $opts -o "$TMP/$m/model.safetensors"
done
has synth-A-config "$TMP/A/config.json" '"model_type": "qwen3_moe"'
has synth-B-config "$TMP/B/config.json" '"num_local_experts": 4'
"$bin" inspect "$TMP/C/model.safetensors" >"$TMP/insp" 2>&1
has synth-C-per-expert "$TMP/insp" "model.layers.1.mlp.experts.7.down_proj.weight"
"$bin" inspect "$TMP/B/model.safetensors" >"$TMP/insp" 2>&1
has synth-B-fused "$TMP/insp" "4 x 64 x 128"
has synth-D-config "$TMP/D/config.json" '"quant_method": "mxfp4"'
"$bin" inspect "$TMP/D" >"$TMP/insp" 2>&1
hasre synth-D-blocks "$TMP/insp" "model\.layers\.1\.mlp\.experts\.gate_up_proj_blocks +U8 +4 x 128 x 2 x 16 "
hasre synth-D-scales "$TMP/insp" "model\.layers\.1\.mlp\.experts\.down_proj_scales +U8 +4 x 64 x 2 "

# diff from the HF checkpoint: every tensor identical, the recipe confirmed
for c in "A Q4_K_M" "B MXFP4_MOE" "B Q8_0" "C Q4_K_M" "D MXFP4_MOE" "E Q4_K_M"; do
	set -- $c
	run "diff-$1-$2" 0 diff "$TMP/$1" "$fx/moe-$1.$2.gguf"
	has "diff-$1-$2-recipe" "$TMP/out" "Recipe: every tensor has the type llama.cpp's $2 plan gives"
done
# the stacked shapes: ne = [in, out, experts] (gguf-py writes torch.stack(dim=0) reversed)
run diff-C-json 0 diff --json "$TMP/C" "$fx/moe-C.Q4_K_M.gguf"
python3 - "$TMP/out" >"$TMP/shape" 2>&1 <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
t = {x["name"]: x for x in j["tensors"]}
print(t["blk.1.ffn_down_exps.weight"]["shape"], t["blk.1.ffn_gate_exps.weight"]["shape"], t["blk.1.attn_v.weight"]["type"])
PY
has diff-C-shapes "$TMP/shape" "[96, 64, 8] [64, 96, 8] q8_0"
# gpt-oss: the fused gate_up_proj split 0::2 / 1::2 and transposed, its bias split, the sinks
"$bin" diff "$TMP/B" "$fx/moe-B.MXFP4_MOE.gguf" >"$TMP/out" 2>&1
hasre diff-B-sinks "$TMP/out" "^blk\.1\.attn_sinks\.weight +f32 +f32 +identical"
hasre diff-B-up-bias "$TMP/out" "^blk\.0\.ffn_up_exps\.bias +f32 +f32 +identical"
hasre diff-B-down "$TMP/out" "^blk\.1\.ffn_down_exps\.weight +mxfp4 +mxfp4 +identical"
# from the BF16 GGUF the converter wrote
run diff-B-gguf 0 diff "$fx/moe-B.BF16.gguf" "$fx/moe-B.Q8_0.gguf"
# gpt-oss's MXFP4 checkpoint: the experts are the repacked blocks, copied by llama-quantize
"$bin" diff "$TMP/D" "$fx/moe-D.MXFP4_MOE.gguf" >"$TMP/out" 2>&1
hasre diff-D-gate "$TMP/out" "^blk\.0\.ffn_gate_exps\.weight +mxfp4 +mxfp4 +identical"
hasre diff-D-up "$TMP/out" "^blk\.1\.ffn_up_exps\.weight +mxfp4 +mxfp4 +identical"
hasre diff-D-down "$TMP/out" "^blk\.1\.ffn_down_exps\.weight +mxfp4 +mxfp4 +identical"
run diff-D-gguf 0 diff "$fx/moe-D.converted.gguf" "$fx/moe-D.MXFP4_MOE.gguf"
# llama-quantize copied the converter's repacked experts: the same bytes in both files
# (located with inspect --json; the bytes are read by python)
"$bin" inspect --json "$fx/moe-D.converted.gguf" >"$TMP/ic.json" 2>&1
"$bin" inspect --json "$fx/moe-D.MXFP4_MOE.gguf" >"$TMP/ia.json" 2>&1
python3 - "$TMP/ic.json" "$TMP/ia.json" >"$TMP/same" 2>&1 <<'PY'
import json, sys
def exps(path):
    j = json.load(open(path))
    b = open(j["path"], "rb").read()
    return {t["name"]: (t["type"], b[j["data_offset"] + t["offset"]:j["data_offset"] + t["offset"] + t["nbytes"]])
            for t in j["tensors"] if t["name"].endswith("_exps.weight")}
c, a = exps(sys.argv[1]), exps(sys.argv[2])
print(len(a), "expert tensors;", "copied" if a == c and all(t == "mxfp4" for t, _ in a.values()) else "differ")
PY
has diff-D-experts-copied "$TMP/same" "6 expert tensors; copied"
# one byte of expert 3 of blk.1.ffn_down_exps.weight changed in the artifact: its 256-value
# block (48 = 3 x 64 x 64 / 256) diverges, nothing else
python3 - "$TMP/ia.json" "$TMP/D-tampered.gguf" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
b = bytearray(open(j["path"], "rb").read())
t = next(t for t in j["tensors"] if t["name"] == "blk.1.ffn_down_exps.weight")
b[j["data_offset"] + t["offset"] + 3 * 64 * 34 + 5] ^= 0x01
open(sys.argv[2], "wb").write(b)
PY
run diff-D-tampered 1 diff --json "$TMP/D" "$TMP/D-tampered.gguf"
python3 - "$TMP/out" >"$TMP/tam" 2>&1 <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
bad = [(t["name"], t["verdict"], t.get("divergent_blocks"), t.get("first_divergent_block")) for t in j["tensors"] if t["verdict"] != "identical"]
print(bad)
PY
has diff-D-tampered-block "$TMP/tam" "[('blk.1.ffn_down_exps.weight', 'divergent', 1, 48)]"
run diff-C-gguf 0 diff "$fx/moe-C.BF16.gguf" "$fx/moe-C.Q4_K_M.gguf"

# reproduce: byte for byte from the BF16 GGUF
for c in "B MXFP4_MOE" "B Q8_0" "C Q4_K_M"; do
	set -- $c
	run "reproduce-$1-$2" 0 reproduce "$fx/moe-$1.BF16.gguf" "$fx/moe-$1.$2.gguf"
	has "reproduce-$1-$2-text" "$TMP/out" "REPRODUCED"
done
run reproduce-D-MXFP4_MOE 0 reproduce "$fx/moe-D.converted.gguf" "$fx/moe-D.MXFP4_MOE.gguf"
has reproduce-D-MXFP4_MOE-text "$TMP/out" "REPRODUCED"

# quantize from the HF checkpoint: the same tensors, bytes and order of data as llama-quantize's
for c in "B MXFP4_MOE" "C Q4_K_M" "D MXFP4_MOE"; do
	set -- $c
	run "quantize-$1-$2" 0 quantize "$TMP/$1" --recipe "$2" -o "$TMP/q$1.gguf"
	python3 "$top/tests/cli/moe-same-tensors.py" "$TMP/q$1.gguf" "$fx/moe-$1.$2.gguf" >"$TMP/same" 2>&1
	has "quantize-$1-$2-bytes" "$TMP/same" "differ: none"
done

# qwen2moe's shared-expert gate: HF [1, 256], the artifact's [256]
run diff-E-json 0 diff --json "$TMP/E" "$fx/moe-E.Q4_K_M.gguf"
python3 - "$TMP/out" >"$TMP/shape" 2>&1 <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
t = {x["name"]: x for x in j["tensors"]}
g = t["blk.0.ffn_gate_inp_shexp.weight"]
print(g["shape"], g["type"], g["verdict"], t["blk.0.ffn_gate_shexp.weight"]["type"], t["blk.0.ffn_down_shexp.weight"]["type"])
PY
has diff-E-shexp-gate "$TMP/shape" "[256] f32 identical q4_K q8_0"

# MoE with an importance matrix: per-expert rows of the matrix for the 3-D expert tensors
run imatrix-ref 0 quantize "$TMP/A" --type bf16 -o "$TMP/moe-A.BF16.gguf"
(cd "$TMP" && grep moe-A.BF16.gguf "$fx/unkept.sha256" | sha256sum -c --quiet) >"$TMP/sums" 2>&1 &&
	ok imatrix-ref-sha256 || no imatrix-ref-sha256 "$(cat "$TMP/sums")"
run imatrix-diff-IQ2_XS 0 diff --imatrix "$fx/moe-A.imatrix.gguf" "$TMP/A" "$fx/moe-A.IQ2_XS.imatrix.gguf"
has imatrix-diff-IQ2_XS-recipe "$TMP/out" "Recipe: every tensor has the type llama.cpp's IQ2_XS plan gives"
has imatrix-diff-IQ2_XS-weighted "$TMP/out" "8 tensors were re-quantized with its weights"
hasre imatrix-diff-IQ2_XS-experts "$TMP/out" "^blk\.0\.ffn_down_exps\.weight +iq2_xs +iq2_xs +identical"
run imatrix-diff-IQ2_XS-gguf 0 diff --imatrix "$fx/moe-A.imatrix.gguf" "$TMP/moe-A.BF16.gguf" "$fx/moe-A.IQ2_XS.imatrix.gguf"
run imatrix-reproduce-IQ2_XS 0 reproduce "$TMP/moe-A.BF16.gguf" "$fx/moe-A.IQ2_XS.imatrix.gguf"
has imatrix-reproduce-IQ2_XS-text "$TMP/out" "REPRODUCED"
run imatrix-swapped 1 diff --json --imatrix "$fx/moe-A.imatrix-swapped.gguf" "$TMP/A" "$fx/moe-A.IQ2_XS.imatrix.gguf"
python3 - "$TMP/out" >"$TMP/sw" 2>&1 <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(sorted(t["name"] for t in j["tensors"] if t["verdict"] != "identical"))
PY
has imatrix-swapped-experts "$TMP/sw" "['blk.0.ffn_down_exps.weight', 'blk.0.ffn_gate_exps.weight', 'blk.0.ffn_up_exps.weight']"
# Q4_K_M with the matrix, kept by digest: quantize writes llama-quantize's file (the matrix by the
# bare name llama-quantize was given, so quantize.imatrix.file matches)
(cd "$fx" && "$bin" quantize "$TMP/moe-A.BF16.gguf" --recipe Q4_K_M --imatrix moe-A.imatrix.gguf \
	-o "$TMP/moe-A.Q4_K_M.imatrix.gguf") >"$TMP/out" 2>"$TMP/err" && ok imatrix-quantize-Q4_K_M ||
	no imatrix-quantize-Q4_K_M "$(head -c 300 "$TMP/err")"
(cd "$TMP" && grep moe-A.Q4_K_M.imatrix.gguf "$fx/unkept.sha256" | sha256sum -c --quiet) >"$TMP/sums" 2>&1 &&
	ok imatrix-Q4_K_M-sha256 || no imatrix-Q4_K_M-sha256 "$(cat "$TMP/sums")"
run imatrix-diff-Q4_K_M 0 diff --imatrix "$fx/moe-A.imatrix.gguf" "$TMP/A" "$TMP/moe-A.Q4_K_M.imatrix.gguf"
has imatrix-diff-Q4_K_M-recipe "$TMP/out" "Recipe: every tensor has the type llama.cpp's Q4_K_M plan gives"

# llama-quantize refuses to requantize mxfp4 experts (make.sh checks that it does)
run quantize-D-Q8_0-refused 2 quantize "$TMP/D" --recipe Q8_0 -o "$TMP/qD8.gguf"
has quantize-D-Q8_0-refused-msg "$TMP/err" "is mxfp4 in the reference and would be q8_0: llama-quantize refuses to requantize it"
run quantize-D-gguf-Q8_0-refused 2 quantize "$fx/moe-D.converted.gguf" --recipe Q8_0 -o "$TMP/qD8.gguf"
[ -e "$TMP/qD8.gguf" ] && no quantize-D-Q8_0-no-output "output written" || ok quantize-D-Q8_0-no-output

# a transposed export of two expert slices
run transposed-diff 1 diff "$TMP/C" "$fx/moe-C.Q8_0.transposed.gguf"
hasre transposed-verdict "$TMP/out" "^blk\.1\.ffn_down_exps\.weight +q8_0 +q8_0 +transposed +bytes "
has transposed-grouped "$TMP/out" "Per expert: experts 2,5 of blk.1.ffn_down_exps.weight are transposed (the other 6 match out,in)."
run transposed-json 1 diff --json "$TMP/C" "$fx/moe-C.Q8_0.transposed.gguf"
python3 - "$TMP/out" >"$TMP/ex" 2>&1 <<'PY'
import json, sys
t = {x["name"]: x for x in json.load(open(sys.argv[1]))["tensors"]}
d = t["blk.1.ffn_down_exps.weight"]
print(d["verdict"], d["divergent_blocks"], d["first_divergent_block"], ",".join(map(str, d["expert_layouts"])),
      "expert_layouts" in t["blk.0.ffn_down_exps.weight"])
PY
# 24 q8_0 blocks of 256 values per expert slice (96 x 64): experts 2 and 5 are blocks 48..71 and 120..143
has transposed-json-layouts "$TMP/ex" "transposed 48 48 out,in,out,in,transposed,out,in,out,in,transposed,out,in,out,in False"

# shape-swap covers the expert tensors slice by slice; the mechanism predicts identical bytes
# exactly when both dims of a slice are multiples of the block (q8_0: 32; q4_K: 256)
# exit 1: the router ffn_gate_inp (64 x 8) is not whole blocks of 32
run swap-q8_0 1 shape-swap "$TMP/C" --type q8_0 --json
python3 - "$TMP/out" >"$TMP/sw" 2>&1 <<'PY'
import json, sys
t = {x["name"]: x for x in json.load(open(sys.argv[1]))["tensors"]}
d = t["blk.1.ffn_down_exps.weight"]
print(d["shape"], d["experts"], d["divergent_experts"], d["identical"], d["predicted_identical"])
PY
has swap-q8_0-experts "$TMP/sw" "[96, 64] 8 0 True True"
run swap-q4_K 1 shape-swap "$TMP/C" --type q4_K --json
python3 - "$TMP/out" >"$TMP/sw" 2>&1 <<'PY'
import json, sys
t = {x["name"]: x for x in json.load(open(sys.argv[1]))["tensors"]}
d = t["blk.0.ffn_gate_exps.weight"]
print(d["shape"], d["experts"], d["divergent_experts"], d["identical"], d["predicted_identical"], d["bytes"])
PY
# 64 x 96 under q4_K: out,in pads 96 rows of 64 to 256 (96 blocks); in,out 64 rows of 96 (64 blocks); x 8 experts x 144 B
has swap-q4_K-experts "$TMP/sw" "[64, 96] 8 8 False False {'out,in': 110592, 'in,out': 73728}"

# sharded (a shard exits 0 once its part is written): the parts carry the per-expert layouts,
# so the merged run reports them as the unsharded one does
run shard-1 0 diff "$TMP/C" "$fx/moe-C.Q8_0.transposed.gguf" --shard 1/2 -o "$TMP/p1.json"
run shard-2 0 diff "$TMP/C" "$fx/moe-C.Q8_0.transposed.gguf" --shard 2/2 -o "$TMP/p2.json"
run shard-merge 1 merge "$TMP/p1.json" "$TMP/p2.json"
has shard-merge-grouped "$TMP/out" "Per expert: experts 2,5 of blk.1.ffn_down_exps.weight are transposed (the other 6 match out,in)."
run swap-shard-1 0 shape-swap "$TMP/C" --type q4_K --shard 1/2 -o "$TMP/s1.json"
run swap-shard-2 0 shape-swap "$TMP/C" --type q4_K --shard 2/2 -o "$TMP/s2.json"
run swap-merge 1 merge --json "$TMP/s1.json" "$TMP/s2.json"
python3 - "$TMP/out" >"$TMP/sw" 2>&1 <<'PY'
import json, sys
t = {x["name"]: x for x in json.load(open(sys.argv[1]))["tensors"]}
d = t["blk.0.ffn_gate_exps.weight"]
print(d["experts"], d["divergent_experts"])
PY
has swap-merge-experts "$TMP/sw" "8 8"

# usage
run usage-experts-dense 2 synth --arch qwen2 --hidden 64 --intermediate 64 --heads 2 --kv-heads 1 --vocab 64 --experts 4 --experts-used 2 -o "$TMP/u1.safetensors"
has usage-experts-dense-msg "$TMP/err" "experts are only synthesized for qwen2moe, qwen3moe and gpt-oss"
run usage-no-experts 2 synth --arch qwen3moe --hidden 64 --intermediate 64 --heads 2 --kv-heads 1 --vocab 64 -o "$TMP/u2.safetensors"
run usage-used-too-many 2 synth --arch gpt-oss --hidden 64 --intermediate 64 --heads 2 --kv-heads 1 --vocab 64 --experts 4 --experts-used 5 -o "$TMP/u3.safetensors"
run usage-mxfp4-qwen3moe 2 synth --arch qwen3moe --hidden 64 --intermediate 64 --heads 2 --kv-heads 1 --vocab 64 --experts 4 --experts-used 2 --mxfp4 -o "$TMP/u5.safetensors"
has usage-mxfp4-qwen3moe-msg "$TMP/err" "--mxfp4 is gpt-oss's checkpoint form, not qwen3moe's"
run usage-mxfp4-not-32 2 synth --arch gpt-oss --hidden 48 --intermediate 64 --heads 2 --kv-heads 1 --vocab 64 --experts 4 --experts-used 2 --mxfp4 -o "$TMP/u6.safetensors"
has usage-mxfp4-not-32-msg "$TMP/err" "multiples of 32"
run usage-experts-zero 2 synth --arch gpt-oss --hidden 64 --intermediate 64 --heads 2 --kv-heads 1 --vocab 64 --experts 0 --experts-used 1 -o "$TMP/u4.safetensors"

# malformed: an expert missing from a layer, or of another shape
cp -r "$TMP/C" "$TMP/C1"
python3 - "$TMP/C1/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
n = struct.unpack_from("<Q", b, 0)[0]
h = json.loads(b[8:8 + n])
del h["model.layers.1.mlp.experts.5.up_proj.weight"]
t = json.dumps(h).encode()
t += b" " * ((-len(t)) % 8)
open(p, "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
PY
run malformed-missing-expert 3 diff "$TMP/C1" "$fx/moe-C.Q4_K_M.gguf"
has malformed-missing-expert-msg "$TMP/err" "layer 1 has 7 up_proj expert tensors, not 8"

# malformed MXFP4 experts: a _blocks tensor without its _scales, and a _scales of another shape
for c in "D1 drop" "D2 shape"; do
	set -- $c
	cp -r "$TMP/D" "$TMP/$1"
	python3 - "$TMP/$1/model.safetensors" "$2" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
n = struct.unpack_from("<Q", b, 0)[0]
h = json.loads(b[8:8 + n])
k = "model.layers.1.mlp.experts.down_proj_scales"
if sys.argv[2] == "drop":
    del h[k]
else:
    h[k]["shape"] = [4, 32, 4]
t = json.dumps(h).encode()
t += b" " * ((-len(t)) % 8)
open(p, "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
PY
	run "malformed-mxfp4-$2" 3 diff "$TMP/$1" "$fx/moe-D.MXFP4_MOE.gguf"
	has "malformed-mxfp4-$2-msg" "$TMP/err" "gpt-oss MXFP4 tensor 'model.layers.1.mlp.experts.down_proj_blocks' must be U8"
done

echo "moe.sh: $pass passed, $fail failed"
[ "$fail" = 0 ]
