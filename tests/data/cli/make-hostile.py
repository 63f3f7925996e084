#!/usr/bin/env python3
"""make-hostile.py - writes hostile-names.gguf for the CLI escaping tests.

A valid GGUF v3 file whose names and strings are hostile to terminals and
JSON: a tensor name with an ESC/OSC sequence, two keys that differ only after
a NUL byte ("a\\0x", "a\\0y"), a key that is not valid UTF-8, and a string
value that is not valid UTF-8.  Written by hand from the GGUF specification
(ggml/docs/gguf.md), so that nothing in quantaudit vouches for it.
"""
import struct

def s(b):
    return struct.pack('<Q', len(b)) + b

kvs = [
    (b'general.architecture', 8, s(b'llama')),
    (b'a\x00x', 4, struct.pack('<I', 1)),
    (b'a\x00y', 4, struct.pack('<I', 2)),
    (b'bad.key.\xff\xfe', 4, struct.pack('<I', 3)),
    (b'bad.value', 8, s(b'caf\xc3 \x1b[31mred\xff')),
]
tensors = [(b'blk.0.\x1b]0;pwned\x07.weight', [32], 0)]   # f32, 32 elements
head = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(kvs))
for k, t, v in kvs:
    head += s(k) + struct.pack('<I', t) + v
off = 0
for name, dims, ty in tensors:
    head += s(name) + struct.pack('<I', len(dims)) + b''.join(struct.pack('<Q', d) for d in dims)
    head += struct.pack('<IQ', ty, off)
head += b'\0' * ((32 - len(head) % 32) % 32)
data = struct.pack('<32f', *[float(i) for i in range(32)])
open('hostile-names.gguf', 'wb').write(head + data)
