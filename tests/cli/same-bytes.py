#!/usr/bin/env python3
"""tests/cli/same-bytes.py - hold an artifact's tensor bytes to ggml's.

usage: same-bytes.py OURS.gguf OURS.json GGML.gguf GGML.json DEFECTS.json

OURS is what `quantaudit quantize` wrote; GGML is fixtures/models'
micro-qwen2.Q4_K_M.corrupt.gguf, ggml's own Q4_K_M artifact of the same
reference with one planted defect (fixtures/README.md), and DEFECTS.json
(fixtures/models/defects.json) says where: a tensor and a 256-element block.
The *.json files are `quantaudit inspect --json` of each GGUF, used only for
the tensor table (name, type, offset, size; the inspect goldens pin that
parser).  The bytes are read and compared here, not by quantaudit: every
tensor must be byte-identical to ggml's, except the defect tensor, which must
differ in exactly one byte, inside the block defects.json names.
"""
import json
import sys

BLOCK_BYTES = {"q4_K": 144, "q5_K": 176, "q6_K": 210, "q8_0": 272, "q4_0": 144}


def tensors(gguf, inspect):
    meta = json.load(open(inspect))
    raw = open(gguf, "rb").read()
    base = meta["data_offset"]
    return {t["name"]: (t["type"], raw[base + t["offset"]: base + t["offset"] + t["nbytes"]])
            for t in meta["tensors"]}


def main():
    ours = tensors(sys.argv[1], sys.argv[2])
    ggml_path = sys.argv[3]
    ggml = tensors(ggml_path, sys.argv[4])
    defects = json.load(open(sys.argv[5]))["corrupt"]
    defect = defects[ggml_path.rsplit("/", 1)[-1]]
    bad = []
    if sorted(ours) != sorted(ggml):
        bad.append("tensor names differ")
    for name in sorted(set(ours) & set(ggml)):
        (ta, a), (tb, b) = ours[name], ggml[name]
        if ta != tb or len(a) != len(b):
            bad.append(f"{name}: {ta} {len(a)} bytes, ggml {tb} {len(b)}")
            continue
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if name == defect["tensor"]:
            bb = BLOCK_BYTES[ta]
            if len(diffs) != 1 or diffs[0] // bb != defect["block"]:
                bad.append(f"{name}: differs at {diffs[:5]}, want one byte in block {defect['block']}")
        elif diffs:
            bad.append(f"{name}: {len(diffs)} bytes differ from ggml's, first at {diffs[0]}")
    if bad:
        print("\n".join(bad))
        return 1
    print(f"{len(ours)} tensors byte-identical to ggml's, "
          f"{defect['tensor']} but for the planted byte in block {defect['block']}")
    return 0


sys.exit(main())
