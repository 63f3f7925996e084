#!/usr/bin/python3
"""moe-same-tensors.py A.gguf B.gguf: every tensor of B is in A with the same shape, type and data bytes.

An independent GGUF v3 walk (not quantaudit's reader); a tensor's bytes run to the next tensor's
offset, so alignment padding is compared only as far as both files have it.  Used by tests/cli/moe.sh.
"""
import struct, sys
def tensors(path):
    b = open(path, "rb").read(); p = 8
    def u32():
        nonlocal p; v = struct.unpack_from("<I", b, p)[0]; p += 4; return v
    def u64():
        nonlocal p; v = struct.unpack_from("<Q", b, p)[0]; p += 8; return v
    def s():
        nonlocal p; n = u64(); v = b[p:p + n].decode(); p += n; return v
    size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    def val(t):
        nonlocal p
        if t == 8: s()
        elif t == 9:
            et = u32(); n = u64()
            for _ in range(n): val(et)
        else: p += size[t]
    nt = u64(); nk = u64()
    for _ in range(nk): s(); val(u32())
    ts = []
    for _ in range(nt):
        name = s(); nd = u32(); ne = [u64() for _ in range(nd)]; ty = u32(); off = u64()
        ts.append((name, ne, ty, off))
    start = (p + 31) // 32 * 32
    offs = sorted(o for _, _, _, o in ts) + [len(b) - start]
    out = {}
    for name, ne, ty, off in ts:
        nxt = min(o for o in offs if o > off)
        out[name] = (ne, ty, b[start + off:start + nxt])
    return out
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
bad = [n for n in b if n not in a or a[n][0] != b[n][0] or a[n][1] != b[n][1] or a[n][2][:min(len(a[n][2]), len(b[n][2]))] != b[n][2][:min(len(a[n][2]), len(b[n][2]))]]
print(len(b), "tensors;", "differ:", bad if bad else "none")
