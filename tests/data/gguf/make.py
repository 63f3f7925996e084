#!/usr/bin/env python3
"""Generate the GGUF test files in this directory (python3 stdlib only).

good-*.gguf are small valid files; bad-*.gguf each break exactly one rule of
the format.  For every bad file this script knows the byte offset of the
broken field because it builds the file field by field; run it with
--table to print the rows of the malformed table in tests/unit/check_gguf.c.

Tensor data byte j of the i-th tensor (in file order) is
(j * 31 + i * 17 + 1) & 0xff, so tests can check reads without a copy.

Usage: python3 make.py [--table]   (writes next to this script)
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
          F32: "<f", BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}

# ggml type id -> (block elements, block bytes), for the types used here
GEOM = {0: (1, 4), 1: (1, 2), 8: (32, 34), 12: (256, 144), 17: (256, 74), 28: (1, 8)}
F32_T, F16_T, Q8_0, Q4_K, IQ2_XS, F64_T = 0, 1, 8, 12, 17, 28


class B:
    """A byte builder that remembers named offsets."""

    def __init__(self):
        self.b = bytearray()
        self.marks = {}

    def mark(self, name):
        self.marks[name] = len(self.b)
        return self

    def raw(self, x):
        self.b += x
        return self

    def u32(self, v):
        return self.raw(struct.pack("<I", v))

    def u64(self, v):
        return self.raw(struct.pack("<Q", v))

    def s(self, x):
        if isinstance(x, str):
            x = x.encode("utf-8")
        return self.u64(len(x)).raw(x)

    def header(self, n_tensors, n_kv, version=3):
        return self.raw(b"GGUF").u32(version).u64(n_tensors).u64(n_kv)

    def value(self, t, v):
        if t in SCALAR:
            return self.raw(struct.pack(SCALAR[t], v))
        if t == STR:
            return self.s(v)
        if t == ARR:
            et, items = v
            self.u32(et).u64(len(items))
            for it in items:
                self.value(et, it)
            return self
        raise ValueError(t)

    def kv(self, key, t, v):
        self.s(key).u32(t)
        return self.value(t, v)

    def tinfo(self, name, ne, ttype, offset):
        self.s(name).u32(len(ne))
        for n in ne:
            self.u64(n)
        return self.u32(ttype).u64(offset)

    def pad(self, align):
        while len(self.b) % align:
            self.b.append(0)
        return self


def nbytes(ttype, ne):
    be, bb = GEOM[ttype]
    n = 1
    for x in ne:
        n *= x
    return n // be * bb


def tensor_bytes(i, n):
    return bytes(((j * 31 + i * 17 + 1) & 0xFF) for j in range(n))


def gguf(kvs, tensors, version=3, align=32, offsets=None):
    """A complete file: kvs as (key, type, value), tensors as (name, type, ne).

    offsets, when given, places tensor i at offsets[i] in the data section
    (gaps are zero-filled); otherwise tensors follow each other, padded.
    """
    b = B().header(len(tensors), len(kvs), version)
    for k, t, v in kvs:
        b.kv(k, t, v)
    sizes = [nbytes(tt, ne) for _, tt, ne in tensors]
    if offsets is None:
        offsets, o = [], 0
        for n in sizes:
            offsets.append(o)
            o += (n + align - 1) // align * align
    for (name, tt, ne), o in zip(tensors, offsets):
        b.tinfo(name, ne, tt, o)
    b.pad(align)
    base = len(b.b)
    end = 0
    for i, n in enumerate(sizes):
        end = max(end, offsets[i] + (n + align - 1) // align * align)
    data = bytearray(end)
    for i, n in enumerate(sizes):
        data[offsets[i]:offsets[i] + n] = tensor_bytes(i, n)
    b.raw(bytes(data))
    assert len(b.b) == base + end
    return bytes(b.b)


# ---------------------------------------------------------------- good files

def nested(depth):
    """An array value nested depth levels deep, innermost u8 [7]."""
    if depth == 1:
        return (U8, [7])
    return (ARR, [nested(depth - 1)])


GOOD = {
    "good-v2.gguf": gguf([("general.architecture", STR, "test"),
                          ("general.name", STR, "good v2")],
                         [("w", F32_T, [4, 2])], version=2),
    "good-v3.gguf": gguf([("general.architecture", STR, "test"),
                          ("test.count", U32, 7)],
                         [("a", F32_T, [8]), ("b", F16_T, [16, 2]),
                          ("c", Q8_0, [64, 3]), ("d", Q4_K, [256])]),
    "good-all-types.gguf": gguf([
        ("t.u8", U8, 200), ("t.i8", I8, -100), ("t.u16", U16, 60000),
        ("t.i16", I16, -30000), ("t.u32", U32, 4000000000),
        ("t.i32", I32, -2000000000), ("t.f32", F32, 1.5), ("t.bool", BOOL, 1),
        ("t.string", STR, "h\u00e9llo"), ("t.string_nul", STR, b"a\x00b"),
        ("t.u64", U64, 2**64 - 1), ("t.i64", I64, -2**63), ("t.f64", F64, -0.25),
        ("t.array_u8", ARR, (U8, [1, 2, 3])),
        ("t.array_str", ARR, (STR, ["x", "", "yz"])),
        ("t.array_nested", ARR, (ARR, [(U32, [1, 2]), (U32, [3]), (U32, [])])),
        ("t.array_empty", ARR, (I32, [])),
        ("t.array_f32", ARR, (F32, [0.5, -2.0])),
        ("t.array_bool", ARR, (BOOL, [0, 1])),
        ("t.array_deep", ARR, nested(8)),
    ], []),
    "good-iq2xs.gguf": gguf([], [("q", IQ2_XS, [256, 2]), ("f", F32_T, [4])]),
    "good-align64.gguf": gguf([("general.alignment", U32, 64)],
                              [("a", F32_T, [3]), ("b", F32_T, [5])], align=64),
    "good-align1.gguf": gguf([("general.alignment", U32, 1)],
                             [("a", F32_T, [3]), ("b", F16_T, [3])], align=1),
    "good-empty.gguf": bytes(B().header(0, 0).b),
    "good-4d.gguf": gguf([], [("x", F32_T, [2, 3, 4, 5])]),
    "good-unordered.gguf": gguf([], [("late", F32_T, [4]), ("early", F32_T, [4])],
                                offsets=[64, 0]),
}

# ---------------------------------------------------------------- bad files

BAD = {}  # name -> (bytes, code, reason substring, offset)


def bad(name, data, code, reason, offset):
    BAD[name] = (bytes(data), code, reason, offset)


F, U = "QA_ERR_FORMAT", "QA_ERR_UNSUPPORTED"
PAD = "p" * 64  # a long string that keeps the count bounds satisfied


def kv0():
    """Header for 0 tensors and 2 kvs, then one complete kv: the second kv is broken."""
    return B().header(0, 2).kv("general.name", STR, "x" * 40)


def t0(n_tensors=1):
    """Header with one padding kv; tensor infos follow."""
    return B().header(n_tensors, 1).kv("pad", STR, PAD)


bad("bad-empty.gguf", b"", F, "truncated magic", 0)
bad("bad-trunc-magic.gguf", b"GG", F, "truncated magic", 0)
bad("bad-magic.gguf", b"GGUX" + bytes(B().u32(3).u64(0).u64(0).b), F, "bad magic", 0)
bad("bad-version-1.gguf", B().header(0, 0, version=1).b, U,
    "gguf version 1 is not supported", 4)
bad("bad-version-big-endian.gguf", b"GGUF" + struct.pack(">IQQ", 3, 0, 0), U,
    "big-endian gguf files are not supported", 4)
bad("bad-version-unknown.gguf", B().header(0, 0, version=4).b, F,
    "unknown gguf version 4", 4)
bad("bad-trunc-version.gguf", b"GGUF\x03\x00", F, "truncated version", 4)
bad("bad-trunc-n-tensors.gguf", B().header(0, 0).b[:12], F, "truncated tensor count", 8)
bad("bad-trunc-n-kv.gguf", B().header(0, 0).b[:20], F, "truncated metadata count", 16)
bad("bad-n-tensors-huge.gguf", B().header(1 << 40, 0).raw(bytes(64)).b, F,
    "tensor count 1099511627776 is more than", 8)
bad("bad-n-kv-huge.gguf", B().header(0, 1000).kv("a", U8, 1).b, F,
    "metadata count 1000 is more than", 16)

b = kv0().mark("x").raw(bytes(4))
bad("bad-trunc-kv-key.gguf", b.b, F, "truncated metadata key length", b.marks["x"])
b = kv0().mark("x").u64(1000).raw(b"abc")
bad("bad-key-past-end.gguf", b.b, F, "metadata key length 1000 runs past end of file",
    b.marks["x"])
b = kv0().s("k").mark("x").raw(bytes(2))
bad("bad-trunc-kv-type.gguf", b.b, F, "truncated metadata value type", b.marks["x"])
b = kv0().s("k").u32(U64).mark("x").raw(bytes(3))
bad("bad-trunc-kv-value.gguf", b.b, F, "truncated u64 value", b.marks["x"])
b = kv0().s("k").u32(STR).mark("x").raw(bytes(5))
bad("bad-trunc-string-len.gguf", b.b, F, "truncated string value length", b.marks["x"])
b = kv0().s("k").u32(STR).mark("x").u64(500).raw(b"abc")
bad("bad-string-past-end.gguf", b.b, F, "string value length 500 runs past end of file",
    b.marks["x"])
b = kv0().s("k").mark("x").u32(13).raw(bytes(8))
bad("bad-value-type.gguf", b.b, F, "unknown value type 13", b.marks["x"])
b = kv0().s("k").u32(ARR).mark("x").raw(bytes(2))
bad("bad-trunc-array-type.gguf", b.b, F, "truncated array element type", b.marks["x"])
b = kv0().s("k").u32(ARR).u32(U8).mark("x").raw(bytes(4))
bad("bad-trunc-array-count.gguf", b.b, F, "truncated array count", b.marks["x"])
b = kv0().s("k").u32(ARR).u32(STR).u64(2).s("z" * 20).mark("x").raw(bytes(3))
bad("bad-trunc-array-elem.gguf", b.b, F, "truncated string value length", b.marks["x"])
b = kv0().s("k").u32(ARR).mark("x").u32(13).u64(0)
bad("bad-array-elem-type.gguf", b.b, F, "unknown array element type 13", b.marks["x"])
b = kv0().s("k").u32(ARR).u32(U32).mark("x").u64(1 << 62).raw(bytes(16))
bad("bad-array-count.gguf", b.b, F, "array count 4611686018427387904 of u32 needs more",
    b.marks["x"])
b = kv0().s("k").u32(ARR)
for level in range(8):
    if level == 7:
        b.mark("x")
    b.u32(ARR).u64(1)
b.u32(U8).u64(0)
bad("bad-array-depth.gguf", b.b, F, "arrays nested deeper than 8 levels", b.marks["x"])
b = kv0().s("k").u32(BOOL).mark("x").raw(b"\x02")
bad("bad-bool.gguf", b.b, F, "bool value 2 is neither 0 nor 1", b.marks["x"])
b = kv0().mark("x").kv("general.name", U8, 1)
bad("bad-dup-key.gguf", b.b, F, 'duplicate metadata key "general.name"', b.marks["x"])
b = kv0().s("general.alignment").u32(U32).mark("x").u32(0)
bad("bad-alignment-zero.gguf", b.b, F, "general.alignment 0 is not a nonzero power of two",
    b.marks["x"])
b = kv0().s("general.alignment").u32(U32).mark("x").u32(48)
bad("bad-alignment-npot.gguf", b.b, F, "general.alignment 48 is not a nonzero power of two",
    b.marks["x"])
b = kv0().s("general.alignment").mark("x").u32(U64).u64(32)
bad("bad-alignment-type.gguf", b.b, F, "general.alignment has type u64, expected u32",
    b.marks["x"])

b = t0().mark("x").raw(bytes(4))
bad("bad-trunc-tensor-name.gguf", b.b, F, "truncated tensor name length", b.marks["x"])
b = t0().mark("x").u64(1000).raw(bytes(8))
bad("bad-tensor-name-past-end.gguf", b.b, F, "tensor name length 1000 runs past end",
    b.marks["x"])
b = t0().s("w").mark("x").raw(bytes(2))
bad("bad-trunc-tensor-ndims.gguf", b.b, F, "truncated tensor dimension count", b.marks["x"])
b = t0().s("w").u32(2).u64(4).mark("x").raw(bytes(3))
bad("bad-trunc-tensor-ne.gguf", b.b, F, "truncated tensor dimension", b.marks["x"])
b = t0().s("w").u32(1).u64(4).mark("x").raw(bytes(2))
bad("bad-trunc-tensor-type.gguf", b.b, F, "truncated tensor type", b.marks["x"])
b = t0().s("w").u32(1).u64(4).u32(F32_T).mark("x").raw(bytes(4))
bad("bad-trunc-tensor-offset.gguf", b.b, F, "truncated tensor data offset", b.marks["x"])
b = t0().s("w").mark("x").u32(5)
for _ in range(5):
    b.u64(1)
b.u32(F32_T).u64(0).pad(32).raw(bytes(32))
bad("bad-ndims-5.gguf", b.b, F, 'tensor "w" has 5 dimensions, more than 4', b.marks["x"])
b = t0().s("w").mark("x").u32(0).u32(F32_T).u64(0).pad(32).raw(bytes(32))
bad("bad-ndims-zero.gguf", b.b, F, 'tensor "w" has zero dimensions', b.marks["x"])
b = t0().s("w").u32(2).u64(4).mark("x").u64(0).u32(F32_T).u64(0).pad(32).raw(bytes(32))
bad("bad-ne-zero.gguf", b.b, F, 'tensor "w" dimension 1 is zero', b.marks["x"])
b = t0().s("w").u32(2).u64(1 << 32).mark("x").u64(1 << 32).u32(F32_T).u64(0).pad(32)
bad("bad-ne-overflow.gguf", b.b, F, 'tensor "w" element count overflows int64', b.marks["x"])
b = t0().s("w").u32(1).mark("x").u64(1 << 63).u32(F32_T).u64(0).pad(32)
bad("bad-ne-huge.gguf", b.b, F, 'tensor "w" element count overflows int64', b.marks["x"])
b = t0().s("w").u32(1).u64(4).mark("x").u32(4).u64(0).pad(32).raw(bytes(32))
bad("bad-tensor-type.gguf", b.b, F, 'tensor "w" has unknown type 4', b.marks["x"])
b = t0().s("w").u32(1).u64(4).mark("x").u32(0xFFFFFFFF).u64(0).pad(32).raw(bytes(32))
bad("bad-tensor-type-huge.gguf", b.b, F, 'tensor "w" has unknown type 4294967295',
    b.marks["x"])
b = t0().s("w").u32(2).mark("x").u64(100).u64(1).u32(Q4_K).u64(0).pad(32).raw(bytes(160))
bad("bad-block.gguf", b.b, F,
    'tensor "w" row of 100 elements is not a multiple of the q4_K block size 256',
    b.marks["x"])
b = t0().s("w").u32(1).u64(1 << 62).mark("x").u32(F64_T).u64(0).pad(32)
bad("bad-nbytes-overflow.gguf", b.b, F, 'tensor "w" byte size overflows', b.marks["x"])
b = t0().s("w").u32(1).u64(4).u32(F32_T).mark("x").u64(16).pad(32).raw(bytes(64))
bad("bad-offset-align.gguf", b.b, F,
    'tensor "w" data offset 16 is not a multiple of the alignment 32', b.marks["x"])
b = t0().s("w").u32(1).u64(64).u32(F32_T).mark("x").u64(0).pad(32).raw(bytes(100))
bad("bad-data-past-end.gguf", b.b, F, 'tensor "w" data (256 bytes at data offset 0) runs past end',
    b.marks["x"])
b = t0(2).tinfo("a", [16], F32_T, 0).s("b").u32(1).u64(16).u32(F32_T).mark("x").u64(32)
b.pad(32).raw(bytes(96))
bad("bad-overlap.gguf", b.b, F, 'tensor "b" data overlaps tensor "a"', b.marks["x"])
b = t0(2).tinfo("w", [4], F32_T, 0).mark("x").tinfo("w", [4], F32_T, 32).pad(32).raw(bytes(64))
bad("bad-dup-tensor.gguf", b.b, F, 'duplicate tensor name "w"', b.marks["x"])


def c_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    for name, data in GOOD.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    for name, (data, _, _, _) in BAD.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    if "--table" in sys.argv:
        for name, (_, code, reason, off) in sorted(BAD.items()):
            print("\t{ %s, %s, %s, %d }," % (c_str(name), code, c_str(reason), off))


if __name__ == "__main__":
    main()
