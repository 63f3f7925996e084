#!/usr/bin/env python3
"""make-bombs.py DIR - writes hostile inputs for tests/cli/bombs.sh.

Each file is built by hand from the GGUF and safetensors specifications
(ggml/docs/gguf.md; safetensors' README: 8-byte little-endian header length,
then a JSON header).  Sparse files claim far more than they hold on disk.
"""
import os, struct, sys

d = sys.argv[1]

def s(b):
    return struct.pack('<Q', len(b)) + b

def gguf(n_tensors, kvs):
    head = b'GGUF' + struct.pack('<IQQ', 3, n_tensors, len(kvs))
    for k, t, v in kvs:
        head += s(k) + struct.pack('<I', t) + v
    return head

def write(name, data, size=None):
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)
        if size is not None:
            f.truncate(size)

# 60 MiB of u8 metadata, all bytes present: a valid file
n = 60 << 20
write('u8-array.gguf', gguf(0, [(b'big.u8', 9, struct.pack('<IQ', 0, n))]) + b'\x01' * n)
# 2 Mi empty strings (16 MiB): a valid file
n = 2 << 20
write('str-array.gguf', gguf(0, [(b'big.str', 9, struct.pack('<IQ', 8, n))]) + b'\0' * (8 * n))
# a sparse 1.5 GB file whose header claims a 1.5 GB u8 array
n = 1536 << 20
write('sparse-header.gguf', gguf(0, [(b'big.u8', 9, struct.pack('<IQ', 0, n))]), size=n + 64)
# a string value claiming 1 GiB, sparse
n = 1 << 30
write('giant-string.gguf', gguf(0, [(b'big.s', 8, struct.pack('<Q', n))]), size=n + 64)
# arrays nested 100 deep
v = b''
for _ in range(100):
    v += struct.pack('<IQ', 9, 1)
write('deep-nesting.gguf', gguf(0, [(b'deep', 9, v[4:])]))
# 2^40 tensors claimed in a small file
write('tensor-count.gguf', gguf(1 << 40, []) + b'\0' * 4096)
# 2^40 metadata pairs claimed
write('kv-count.gguf', b'GGUF' + struct.pack('<IQQ', 3, 0, 1 << 40) + b'\0' * 4096)
# safetensors: a 99 MB header length in a sparse file of zeros
n = 99 * 1000 * 1000
write('sparse-header.safetensors', struct.pack('<Q', n) + b'{', size=8 + n)
# safetensors: a header length of 2^63
write('huge-length.safetensors', struct.pack('<Q', 1 << 63) + b'{}')
# safetensors: a valid 20 MB header of one long metadata string
body = b'{"__metadata__":{"k":"' + b'a' * (20 * 1000 * 1000) + b'"}}'
write('big-metadata.safetensors', struct.pack('<Q', len(body)) + body)
