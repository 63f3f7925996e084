#!/usr/bin/env python3
"""Write the block index corpus (tests/data/blockindex) from the format in
src/lib/blockindex.h: good-*.bin must be accepted, bad-*.bin refused with
QA_ERR_FORMAT (check_blockindex, fuzz_blockindex seeds).  Digests are
SHA-256 of b"block N", truncated; their values do not matter to the reader."""
import hashlib
import struct

def index(counts, db=8, magic=b"QABLKIDX", version=1, nt=None, nr=None, extra=b""):
    recs = b"".join(hashlib.sha256(b"block %d" % i).digest()[:db] for i in range(sum(counts)))
    head = magic + struct.pack("<IIQQ", version, db, len(counts) if nt is None else nt,
                               sum(counts) if nr is None else nr)
    return head + b"".join(struct.pack("<Q", c) for c in counts) + recs + extra

files = {
    "good-three.bin": index([3, 0, 2]),
    "good-empty.bin": index([]),
    "good-full-digests.bin": index([2, 1], db=32),
    "bad-short.bin": index([1])[:16],
    "bad-magic.bin": index([1], magic=b"QABLKIDY"),
    "bad-version.bin": index([1], version=2),
    "bad-digest-size-small.bin": index([1], db=2),
    "bad-digest-size-big.bin": index([1], db=33),
    "bad-tensor-count.bin": index([1], nt=1 << 60),
    "bad-record-count.bin": index([1, 1], nr=3),
    "bad-record-count-huge.bin": index([1], nr=(1 << 64) - 1),
    "bad-count-sum.bin": index([1, 1])[:32] + struct.pack("<QQ", 1, 0) + index([1, 1])[48:],
    "bad-count-overflow.bin": index([1, 1])[:32] + struct.pack("<QQ", (1 << 64) - 1, 3) + index([1, 1])[48:],
    "bad-trailing.bin": index([2], extra=b"\0"),
}
for name, data in files.items():
    with open(name, "wb") as f:
        f.write(data)
