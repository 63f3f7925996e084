#!/usr/bin/env python3
"""Write the imatrix test corpus (this folder): small importance matrices in llama.cpp's GGUF and
legacy .dat formats, valid and malformed.  The expected outcome of each is stated in README.md; the
format facts come from llama.cpp's common/imatrix-loader.cpp and tools/quantize/quantize.cpp.

Usage: make-corpus.py [OUT_DIR]   (default: the folder this script is in)
"""
import math, os, struct, sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv_str_array(k, items):
    return s(k) + struct.pack("<II", 9, 8) + struct.pack("<Q", len(items)) + b"".join(s(i) for i in items)


def kv_u32(k, v):
    return s(k) + struct.pack("<II", 4, v)


def kv_str(k, v):
    return s(k) + struct.pack("<I", 8) + s(v)


def gguf(kvs, tensors):
    """tensors: [(name, ne, type_id, raw bytes)]"""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    off = 0
    for name, ne, tid, raw in tensors:
        out += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne)
        out += struct.pack("<IQ", tid, off)
        off += (len(raw) + 31) // 32 * 32
    out += b"\0" * (-len(out) % 32)
    for _, _, _, raw in tensors:
        out += raw + b"\0" * (-len(raw) % 32)
    return out


def f32(vals):
    return b"".join(struct.pack("<f", v) for v in vals)


META = [kv_str("general.type", "imatrix"), kv_str_array("imatrix.datasets", ["corpus-set"]),
        kv_u32("imatrix.chunk_count", 10), kv_u32("imatrix.chunk_size", 512)]


def sums(n, seed):
    return [((i * 37 + seed * 11) % 97 + 1) * 0.5 for i in range(n)]


def pair(name, n, count, seed=1, ncount=1):
    return [(name + ".in_sum2", [n, ncount] if ncount > 1 else [n], 0, f32(sums(n * ncount, seed))),
            (name + ".counts", [1, ncount] if ncount > 1 else [1], 0, f32([count] * ncount))]


def legacy(entries, chunks=None, dataset=None):
    out = struct.pack("<i", len(entries))
    for name, ncall, vals in entries:
        b = name.encode()
        out += struct.pack("<i", len(b)) + b + struct.pack("<ii", ncall, len(vals)) + f32(vals)
    if chunks is not None:
        out += struct.pack("<i", chunks)
        if dataset is not None:
            out += struct.pack("<i", len(dataset)) + dataset.encode()
    return out


def w(name, data):
    open(os.path.join(OUT, name), "wb").write(data)


good = gguf(META, pair("blk.0.attn_k.weight", 256, 20.0) + pair("blk.0.attn_v.weight", 256, 0.0, 2))
w("good.gguf", good)
w("good-experts.gguf", gguf(META, pair("blk.0.ffn_down_exps.weight", 64, 8.0, 3, ncount=4)))
w("good.dat", legacy([("blk.0.attn_k.weight", 10, sums(256, 1)), ("blk.0.attn_v.weight", 0, sums(256, 2))],
                     chunks=10, dataset="corpus-set"))
w("good-no-trailer.dat", legacy([("blk.0.attn_k.weight", 10, sums(256, 1))]))
# a name that matches no tensor of the models the tests use: accepted, warned about, ignored
w("unmatched.gguf", gguf(META, pair("blk.0.attn_k.weight", 256, 20.0) + pair("blk.9.attn_x.weight", 256, 5.0, 4)))
# an entry whose length does not fit its tensor (blk.0.attn_k.weight has 256 columns)
w("bad-length.gguf", gguf(META, pair("blk.0.attn_k.weight", 128, 20.0)))

w("bad-truncated.gguf", good[:len(good) - 700])
w("bad-truncated.dat", legacy([("blk.0.attn_k.weight", 10, sums(256, 1))])[:600])
w("bad-counts.gguf", gguf(META, [("blk.0.attn_k.weight.in_sum2", [256], 0, f32(sums(256, 1))),
                                 ("blk.0.attn_k.weight.counts", [3], 0, f32([1, 2, 3]))]))
w("bad-no-counts.gguf", gguf(META, [("blk.0.attn_k.weight.in_sum2", [256], 0, f32(sums(256, 1)))]))
w("bad-no-sums.gguf", gguf(META, pair("blk.0.attn_k.weight", 256, 20.0) +
                           [("blk.0.attn_v.weight.counts", [1], 0, f32([3.0]))]))
w("bad-f16.gguf", gguf(META, [("blk.0.attn_k.weight.in_sum2", [256], 1, b"\0\x3c" * 256),
                              ("blk.0.attn_k.weight.counts", [1], 0, f32([1.0]))]))
nan_sums = sums(256, 1)
nan_sums[17] = float("nan")
w("bad-nan.gguf", gguf(META, [("blk.0.attn_k.weight.in_sum2", [256], 0, f32(nan_sums)),
                              ("blk.0.attn_k.weight.counts", [1], 0, f32([4.0]))]))
w("bad-nan.dat", legacy([("blk.0.attn_k.weight", 10, nan_sums)]))
# the same with terminal control bytes in the name: the error line must not carry them raw
w("bad-nan-name.dat", legacy([("evil\x1b[2J\x07name", 10, nan_sums)]))
inf_sums = sums(256, 1)
inf_sums[3] = float("inf")
w("bad-inf.dat", legacy([("blk.0.attn_k.weight", 0, inf_sums)]))
w("bad-nan-count.gguf", gguf(META, [("blk.0.attn_k.weight.in_sum2", [256], 0, f32(sums(256, 1))),
                                    ("blk.0.attn_k.weight.counts", [1], 0, f32([float("nan")]))]))
w("bad-no-metadata.gguf", gguf(META[:3], pair("blk.0.attn_k.weight", 256, 20.0)))
w("bad-chunk-type.gguf", gguf(META[:2] + [kv_str("imatrix.chunk_count", "ten"), META[3]],
                              pair("blk.0.attn_k.weight", 256, 20.0)))
w("bad-no-entries.gguf", gguf(META, []))
w("bad-empty.dat", struct.pack("<i", 0))
w("bad-name-length.dat", struct.pack("<ii", 1, -5) + b"x" * 16)
w("bad-zero-values.dat", struct.pack("<i", 1) + struct.pack("<i", 1) + b"a" + struct.pack("<ii", 1, 0))
w("bad-huge-values.dat", struct.pack("<i", 1) + struct.pack("<i", 1) + b"a" + struct.pack("<ii", 1, 0x7fffffff) + b"\0" * 64)
w("bad-trailer.dat", legacy([("blk.0.attn_k.weight", 10, sums(256, 1))], chunks=10) + struct.pack("<i", 1000) + b"short")
