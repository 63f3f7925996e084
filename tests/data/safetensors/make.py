#!/usr/bin/env python3
"""Generate the safetensors test files (python3 standard library only).

Run from anywhere: python3 tests/data/safetensors/make.py
Writes, next to this script:
  good-*.safetensors        valid files the core tests read
  bad-*.safetensors         malformed single files
  sharded/                  a valid two-shard checkpoint with index and config.json
  single/                   a directory holding one .safetensors file
  bad-sharded-*/            broken sharded checkpoints
  expected.tsv              one line per bad-* entry: path, error code, expected
                            byte offset ("none", "N" or "LO-HI"), a reason
                            substring, and the file d->msg must start with ("-")
The offsets are computed here from the bytes written, independently of the C code.
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
rows = []


def header_bytes(obj_text):
    """Encode the JSON header text, padded with spaces to a multiple of 8 like HF."""
    b = obj_text.encode("utf-8") if isinstance(obj_text, str) else obj_text
    pad = (-len(b)) % 8
    return b + b" " * pad


def st_bytes(obj_text, data=b"", n_override=None):
    h = header_bytes(obj_text)
    n = len(h) if n_override is None else n_override
    return struct.pack("<Q", n) + h + data


def write(rel, blob):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)


def key_off(obj_text, key, base=8):
    """Absolute offset of the opening quote of the (unique) key "key"."""
    needle = json.dumps(key) + ":"
    b = obj_text.encode("utf-8")
    i = b.find(needle.encode("utf-8"))
    assert i >= 0 and b.find(needle.encode("utf-8"), i + 1) < 0, key
    return base + i


def bad(rel, code, offset, reason, prefix="-"):
    rows.append((rel, code, str(offset), reason, prefix))


def hdr(entries):
    """entries: list of (key, value) kept in order, compact JSON."""
    return "{" + ",".join(json.dumps(k) + ":" + json.dumps(v, separators=(",", ":"))
                          for k, v in entries) + "}"


def f32(*xs):
    return struct.pack("<%df" % len(xs), *xs)


def u16(*xs):
    return struct.pack("<%dH" % len(xs), *xs)


# ------------------------------------------------------------------ good files

# Data laid out a, b, c, d, e, f while the keys come in another order, so the
# reader's data-order listing differs from the key order.
A = f32(1.0, -2.5, 0.0, -0.0, 3.4028234663852886e38, 1.401298464324817e-45)
B = u16(0x3C00, 0x0001, 0x03FF, 0x8001, 0x7BFF, 0xFC00, 0x3555, 0xC000)
C = u16(0x3F80, 0xC040, 0x0001, 0x7F80)
D = bytes([0x01, 0x7F, 0x80, 0xFF])
E = f32(42.0)
offs = {}
pos = 0
for name, blob in (("a.f32", A), ("b.f16", B), ("c.bf16", C), ("d.i8", D), ("e.scalar", E)):
    offs[name] = (pos, pos + len(blob))
    pos += len(blob)
offs["f.empty"] = (pos, pos)
data = A + B + C + D + E
good = hdr([
    ("c.bf16", {"dtype": "BF16", "shape": [2, 2], "data_offsets": list(offs["c.bf16"])}),
    ("__metadata__", {"format": "pt", "note": "quantaudit test"}),
    ("f.empty", {"dtype": "F32", "shape": [0, 4], "data_offsets": list(offs["f.empty"])}),
    ("a.f32", {"dtype": "F32", "shape": [2, 3], "data_offsets": list(offs["a.f32"])}),
    ("e.scalar", {"dtype": "F32", "shape": [], "data_offsets": list(offs["e.scalar"])}),
    ("d.i8", {"dtype": "I8", "shape": [4], "data_offsets": list(offs["d.i8"])}),
    ("b.f16", {"dtype": "F16", "shape": [8], "data_offsets": list(offs["b.f16"])}),
])
write("good-small.safetensors", st_bytes(good, data))

# An empty checkpoint: no tensors at all, only metadata.
write("good-empty.safetensors", st_bytes('{"__metadata__":{}}'))

# Every known dtype, one element each, with a 1-D shape of 1.
DT = [("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4),
      ("I16", 2), ("I8", 1), ("U64", 8), ("U32", 4), ("U16", 2), ("U8", 1),
      ("BOOL", 1), ("F8_E4M3", 1), ("F8_E5M2", 1), ("F8_E8M0", 1), ("C64", 8)]
ents, pos = [], 0
for dt, size in DT:
    ents.append(("t." + dt, {"dtype": dt, "shape": [1], "data_offsets": [pos, pos + size]}))
    pos += size
write("good-dtypes.safetensors", st_bytes(hdr(ents), bytes(pos)))

# ------------------------------------------------------------------- bad files


def one(name, entry, data=b"", code="FORMAT", reason="", key=None, extra=()):
    key = "w" if key is None else key
    text = hdr([(key, entry)] + list(extra))
    write(name, st_bytes(text, data))
    bad(name, code, key_off(text, key), reason)


write("bad-short.safetensors", b"\x05\x00\x00\x00\x00")
bad("bad-short.safetensors", "FORMAT", 0, "too short")

write("bad-hdrlen-past-eof.safetensors", struct.pack("<Q", 1000) + b"{}" + b" " * 14)
bad("bad-hdrlen-past-eof.safetensors", "FORMAT", 0, "past end of file")

write("bad-hdrlen-huge.safetensors", struct.pack("<Q", 100000001) + b"{}      ")
bad("bad-hdrlen-huge.safetensors", "FORMAT", 0, "100 mb limit")

write("bad-hdrlen-max.safetensors", struct.pack("<Q", 2**64 - 1) + b"{}      ")
bad("bad-hdrlen-max.safetensors", "FORMAT", 0, "100 mb limit")

for name, text, reason in (
    ("bad-not-json.safetensors", "{not json}", "not valid json"),
    ("bad-empty-header.safetensors", "", "not valid json"),
    ("bad-trailing.safetensors", "{} x", "not valid json"),
    ("bad-truncated-json.safetensors", '{"w":{"dtype":"F32"', "not valid json"),
    ("bad-duplicate-key.safetensors",
     '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
     '"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', "duplicate key"),
    ("bad-nested-duplicate.safetensors",
     '{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}', "duplicate key"),
    ("bad-nul-escape.safetensors",
     '{"w\\u0000x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', "not valid json"),
):
    h = header_bytes(text)
    write(name, st_bytes(text, bytes(8)))
    bad(name, "FORMAT", "8-%d" % (8 + len(h)), reason)

raw = b'{"w\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
write("bad-invalid-utf8.safetensors", st_bytes(raw, bytes(8)))
bad("bad-invalid-utf8.safetensors", "FORMAT", "8-%d" % (8 + len(header_bytes(raw))), "not valid json")

write("bad-not-object.safetensors", st_bytes("[1, 2]"))
bad("bad-not-object.safetensors", "FORMAT", 8, "not a json object")
write("bad-string-header.safetensors", st_bytes('"hello"'))
bad("bad-string-header.safetensors", "FORMAT", 8, "not a json object")

ok = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
one("bad-unknown-dtype.safetensors", dict(ok, dtype="Q4_K"), bytes(8), reason="unknown dtype")
one("bad-lowercase-dtype.safetensors", dict(ok, dtype="f32"), bytes(8), reason="unknown dtype")
one("bad-dtype-type.safetensors", dict(ok, dtype=4), bytes(8), reason="dtype is not a string")
one("bad-no-dtype.safetensors", {"shape": [2], "data_offsets": [0, 8]}, bytes(8), reason="no dtype")
one("bad-no-shape.safetensors", {"dtype": "F32", "data_offsets": [0, 8]}, bytes(8), reason="no shape")
one("bad-shape-type.safetensors", dict(ok, shape="2"), bytes(8), reason="shape is not an array")
one("bad-shape-negative.safetensors", dict(ok, shape=[-2]), bytes(8), reason="not a non-negative integer")
one("bad-shape-float.safetensors", dict(ok, shape=[2.0]), bytes(8), reason="not a non-negative integer")
one("bad-shape-string.safetensors", dict(ok, shape=["2"]), bytes(8), reason="not a non-negative integer")
one("bad-shape-dims.safetensors", dict(ok, shape=[1] * 8 + [2]), bytes(8), reason="more than 8")
one("bad-shape-overflow.safetensors", dict(ok, shape=[2**32, 2**32, 2**32]), bytes(8),
    reason="element count overflows")
one("bad-bytes-overflow.safetensors", dict(ok, shape=[2**62]), bytes(8), reason="byte size overflows")
one("bad-size-mismatch.safetensors", dict(ok, shape=[3]), bytes(8), reason="data_offsets span")
one("bad-no-offsets.safetensors", {"dtype": "F32", "shape": [2]}, bytes(8), reason="no data_offsets")
one("bad-offsets-short.safetensors", dict(ok, data_offsets=[0]), bytes(8), reason="pair of non-negative")
one("bad-offsets-long.safetensors", dict(ok, data_offsets=[0, 8, 8]), bytes(8), reason="pair of non-negative")
one("bad-offsets-negative.safetensors", dict(ok, data_offsets=[-8, 0]), bytes(8), reason="pair of non-negative")
one("bad-offsets-type.safetensors", dict(ok, data_offsets="0,8"), bytes(8), reason="pair of non-negative")
one("bad-begin-gt-end.safetensors", dict(ok, shape=[0], data_offsets=[8, 0]), bytes(8), reason="begin 8 > end 0")
one("bad-offsets-past-end.safetensors", dict(ok, data_offsets=[4, 12]), bytes(8), reason="past end of data")
one("bad-offsets-huge.safetensors", dict(ok, shape=[0], data_offsets=[2**63 - 1, 2**63 - 1]), bytes(8),
    reason="past end of data")
one("bad-entry-not-object.safetensors", [1, 2], bytes(8), reason="not an object")
one("bad-entry-string.safetensors", "F32", bytes(8), reason="not an object")
one("bad-empty-name.safetensors", ok, bytes(8), key="", reason="empty tensor name")

# Overlap: a = [0, 16), b = [8, 24): b starts inside a.  Keys b then a.
text = hdr([("b", {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}),
            ("a", {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]})])
write("bad-overlap.safetensors", st_bytes(text, bytes(24)))
bad("bad-overlap.safetensors", "FORMAT", key_off(text, "b"), "overlaps")
# Identical ranges.
text = hdr([("a", {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}),
            ("b", {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})])
write("bad-overlap-same.safetensors", st_bytes(text, bytes(8)))
bad("bad-overlap-same.safetensors", "FORMAT", key_off(text, "b"), "overlaps")
# A zero-size tensor placed strictly inside another.
text = hdr([("a", {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}),
            ("z", {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]})])
write("bad-overlap-empty.safetensors", st_bytes(text, bytes(16)))
bad("bad-overlap-empty.safetensors", "FORMAT", key_off(text, "z"), "overlaps")
# A tensor swallowed by a larger one after a small gap: a=[0,32), b=[4,8), c=[16,20).
text = hdr([("a", {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}),
            ("c", {"dtype": "F32", "shape": [1], "data_offsets": [16, 20]}),
            ("b", {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]})])
write("bad-overlap-inner.safetensors", st_bytes(text, bytes(32)))
bad("bad-overlap-inner.safetensors", "FORMAT", key_off(text, "b"), "overlaps")

text = hdr([("__metadata__", {"a": 1}), ("w", ok)])
write("bad-metadata-value.safetensors", st_bytes(text, bytes(8)))
bad("bad-metadata-value.safetensors", "FORMAT", key_off(text, "__metadata__"), "__metadata__ value is not a string")
text = hdr([("w", ok), ("__metadata__", ["format", "pt"])])
write("bad-metadata-type.safetensors", st_bytes(text, bytes(8)))
bad("bad-metadata-type.safetensors", "FORMAT", key_off(text, "__metadata__"), "__metadata__ is not an object")

# An error in a later entry after valid ones, with whitespace in the header.
text = ('{\n  "first": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},\n'
        '  "second": {"dtype": "F32", "shape": [2], "data_offsets": [8, 17]}\n}')
write("bad-later-entry.safetensors", st_bytes(text, bytes(17)))
bad("bad-later-entry.safetensors", "FORMAT", key_off(text, "second"), "data_offsets span")

# ------------------------------------------------------------------ sharded


def shard(entries):
    """entries: list of (name, dtype, shape, raw bytes); returns (header text, file bytes)."""
    ents, data = [], b""
    for name, dt, shape, blob in entries:
        ents.append((name, {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}))
        data += blob
    text = hdr([("__metadata__", {"format": "pt"})] + ents)
    return text, st_bytes(text, data)


S1 = [("model.embed_tokens.weight", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6)),
      ("model.layers.0.w", "BF16", [2, 2], u16(0x3F80, 0x4000, 0x4040, 0x4080))]
S2 = [("model.layers.1.w", "F16", [4], u16(0x3C00, 0x4000, 0x4200, 0x4400)),
      ("lm_head.weight", "F32", [3, 2], f32(-1, -2, -3, -4, -5, -6))]
N1, N2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
CONFIG = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3,
          "intermediate_size": 8, "num_hidden_layers": 2, "num_attention_heads": 1,
          "num_key_value_heads": 1, "vocab_size": 2, "rms_norm_eps": 1e-06,
          "rope_theta": 1000000.0, "tie_word_embeddings": False}


def index_text(wmap, meta=None):
    obj = {"metadata": meta if meta is not None else {"total_size": 64, "format": "pt"},
           "weight_map": dict(sorted(wmap.items()))}
    return json.dumps(obj, indent=2)


def make_sharded(rel, s1, s2, wmap, index=None, config=False, names=(N1, N2)):
    d = os.path.join(HERE, rel)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    texts = []
    for nm, entries in zip(names, (s1, s2)):
        if entries is None:
            texts.append(None)
            continue
        text, blob = shard(entries)
        write(os.path.join(rel, nm), blob)
        texts.append(text)
    itext = index if index is not None else index_text(wmap)
    write(os.path.join(rel, "model.safetensors.index.json"), itext.encode())
    if config:
        write(os.path.join(rel, "config.json"), json.dumps(CONFIG, indent=2).encode())
    return texts, itext


WMAP = {n: N1 for n, *_ in S1}
WMAP.update({n: N2 for n, *_ in S2})
make_sharded("sharded", S1, S2, WMAP, config=True)

IDX = "model.safetensors.index.json"

w = dict(WMAP, **{"lm_head.weight": "../sharded/" + N2})
_, itext = make_sharded("bad-sharded-escape", S1, S2, w)
bad("bad-sharded-escape", "FORMAT", key_off(itext, "lm_head.weight", 0), "not a plain file name",
    "bad-sharded-escape/" + IDX)

w = dict(WMAP, **{"lm_head.weight": ".."})
_, itext = make_sharded("bad-sharded-dotdot", S1, S2, w)
bad("bad-sharded-dotdot", "FORMAT", key_off(itext, "lm_head.weight", 0), "not a plain file name",
    "bad-sharded-dotdot/" + IDX)

w = dict(WMAP, **{"lm_head.weight": "model-00003-of-00003.safetensors"})
make_sharded("bad-sharded-missing", S1, S2, w)
bad("bad-sharded-missing", "IO", "none", "cannot open",
    "bad-sharded-missing/model-00003-of-00003.safetensors")

w = dict(WMAP)
del w["model.layers.1.w"]
texts, _ = make_sharded("bad-sharded-unlisted", S1, S2, w)
bad("bad-sharded-unlisted", "FORMAT", key_off(texts[1], "model.layers.1.w"), "not in weight_map",
    "bad-sharded-unlisted/" + N2)

texts, _ = make_sharded("bad-sharded-dup", S1, S2 + [S1[1]], WMAP)
bad("bad-sharded-dup", "FORMAT", key_off(texts[1], "model.layers.0.w"), "duplicate tensor across shards",
    "bad-sharded-dup/" + N2)

w = dict(WMAP, **{"model.layers.0.w": N2})
texts, _ = make_sharded("bad-sharded-wrongshard", S1, S2, w)
bad("bad-sharded-wrongshard", "FORMAT", key_off(texts[0], "model.layers.0.w"), "weight_map names shard",
    "bad-sharded-wrongshard/" + N1)

w = dict(WMAP, **{"model.layers.9.w": N2})
_, itext = make_sharded("bad-sharded-unfound", S1, S2, w)
bad("bad-sharded-unfound", "FORMAT", key_off(itext, "model.layers.9.w", 0), "missing from shard",
    "bad-sharded-unfound/" + IDX)

make_sharded("bad-sharded-notjson", S1, S2, WMAP, index='{"weight_map": {')
bad("bad-sharded-notjson", "FORMAT", "0-16", "index is not valid json", "bad-sharded-notjson/" + IDX)

itext = json.dumps({"metadata": {}})
make_sharded("bad-sharded-nomap", S1, S2, WMAP, index=itext)
bad("bad-sharded-nomap", "FORMAT", 0, "no weight_map", "bad-sharded-nomap/" + IDX)

itext = json.dumps({"weight_map": {"model.layers.0.w": 7}})
make_sharded("bad-sharded-maptype", S1, S2, WMAP, index=itext)
bad("bad-sharded-maptype", "FORMAT", key_off(itext, "model.layers.0.w", 0), "not a string",
    "bad-sharded-maptype/" + IDX)

# A shard whose own header is broken: the message names that shard.
bad_s2 = [("model.layers.1.w", "F16", [5], u16(0x3C00, 0x4000, 0x4200, 0x4400)), S2[1]]
texts, _ = make_sharded("bad-sharded-badshard", S1, bad_s2, WMAP)
bad("bad-sharded-badshard", "FORMAT", key_off(texts[1], "model.layers.1.w"), "data_offsets span",
    "bad-sharded-badshard/" + N2)

# A directory holding one .safetensors file (and no config.json).
d = os.path.join(HERE, "single")
shutil.rmtree(d, ignore_errors=True)
write("single/model.safetensors", shard(S1)[1])

# Two .safetensors files and no index.
d = os.path.join(HERE, "bad-sharded-noindex")
shutil.rmtree(d, ignore_errors=True)
write("bad-sharded-noindex/" + N1, shard(S1)[1])
write("bad-sharded-noindex/" + N2, shard(S2)[1])
bad("bad-sharded-noindex", "FORMAT", "none", "but no index")

with open(os.path.join(HERE, "expected.tsv"), "w") as f:
    f.write("# path\tcode\toffset\treason\tmsg-prefix  (generated by make.py)\n")
    for r in rows:
        f.write("\t".join(r) + "\n")
