#!/usr/bin/env python3
"""tests/cli/inspect-facts.py - what `quantaudit inspect` shows, against readers that are not quantaudit's.

  inspect-facts.py gguf-py FILE.gguf
      The facts of a GGUF file as llama.cpp's gguf-py reader (GGUFReader) reads them, as JSON on
      stdout: version, alignment, data offset, every metadata key with its value type and value,
      every tensor's name, type, shape (ne order), offset in the data section and byte count.
      gguf-py is looked up in $QA_GGUF_PY, then ~/.cache/llama-cpp-ref/src/gguf-py; exit 77 when
      it (or numpy) cannot be imported.  fixtures/models/*.gguf.facts.json were written by this
      (the command is in tests/cli/golden/SOURCES).

  inspect-facts.py safetensors FILE.safetensors
      The same facts of a safetensors file, from its JSON header read with Python's json module.

  inspect-facts.py check FACTS.json FILE INSPECT.json INSPECT.txt
      Hold `quantaudit inspect --json FILE` (INSPECT.json) and `quantaudit inspect FILE` (INSPECT.txt)
      to FACTS.json: every field named above must be equal, keys and tensors in the same order, the
      file's size must be FILE's size.  FLOAT32 values compare as float32 bit patterns (inspect prints
      9 significant digits, enough to round-trip).  Prints the differences; exit 1 when there is one.
"""
import json
import os
import struct
import sys

# gguf-py's GGUFValueType names -> inspect's text names
VTYPES = {"UINT8": "u8", "INT8": "i8", "UINT16": "u16", "INT16": "i16", "UINT32": "u32", "INT32": "i32",
          "FLOAT32": "f32", "BOOL": "bool", "STRING": "string", "ARRAY": "array", "UINT64": "u64",
          "INT64": "i64", "FLOAT64": "f64"}


def gguf_py_facts(path):
    where = os.environ.get("QA_GGUF_PY") or os.path.expanduser("~/.cache/llama-cpp-ref/src/gguf-py")
    sys.path.insert(0, where)
    try:
        from gguf import GGUFReader, GGUFValueType  # noqa: E402
    except Exception as e:  # absent, or numpy missing
        print("SKIP: gguf-py cannot be imported from %s: %s" % (where, e), file=sys.stderr)
        sys.exit(77)
    r = GGUFReader(path, "r")
    meta = []
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue  # the reader's own header pseudo-fields
        t = f.types[0]
        e = {"key": f.name, "type": t.name}
        if t == GGUFValueType.ARRAY:
            e["element_type"] = f.types[-1].name
        e["value"] = f.contents()
        meta.append(e)
    tensors = [{"name": t.name, "type": t.tensor_type.name, "shape": [int(x) for x in t.shape],
                "offset": int(t.data_offset) - int(r.data_offset), "nbytes": int(t.n_bytes)} for t in r.tensors]
    version = int(r.fields["GGUF.version"].parts[0][0])
    return {"format": "gguf", "size": os.path.getsize(path), "version": version, "alignment": int(r.alignment),
            "data_offset": int(r.data_offset), "metadata": meta, "tensors": tensors}


def safetensors_facts(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        h = json.loads(f.read(n))
    meta = h.pop("__metadata__", {}) or {}
    order = sorted(h, key=lambda k: (h[k]["data_offsets"][0], k))
    tensors = [{"name": k, "type": h[k]["dtype"], "shape": h[k]["shape"], "offset": h[k]["data_offsets"][0],
                "nbytes": h[k]["data_offsets"][1] - h[k]["data_offsets"][0]} for k in order]
    return {"format": "safetensors", "size": os.path.getsize(path), "data_offset": 8 + n,
            "metadata": [{"key": k, "type": "STRING", "value": v} for k, v in meta.items()], "tensors": tensors}


def same_value(vtype, want, got):
    if vtype == "FLOAT32":
        return isinstance(got, (int, float)) and struct.pack("<f", want) == struct.pack("<f", got)
    if vtype == "BOOL":
        return got is want or got == bool(want)
    return got == want


def check(facts, path, ij, text):
    bad = []

    def expect(what, want, got):
        if want != got:
            bad.append("%s: inspect shows %r, the reader %r" % (what, got, want))

    expect("size", os.path.getsize(path), facts["size"])
    # --- JSON
    expect("json format", facts["format"], ij.get("format"))
    gguf = facts["format"] == "gguf"
    if gguf:
        for k in ("size", "version", "alignment", "data_offset"):
            expect("json " + k, facts[k], ij.get(k))
        jm = ij.get("metadata", {})
        expect("json metadata keys", [m["key"] for m in facts["metadata"]], list(jm))
        for m in facts["metadata"]:
            if m["key"] not in jm:
                continue
            if m["type"] == "ARRAY":
                g = jm[m["key"]]
                if not (isinstance(g, list) and len(g) == len(m["value"]) and
                        all(same_value(m["element_type"], a, b) for a, b in zip(m["value"], g))):
                    bad.append("json metadata %s: inspect's array differs from the reader's" % m["key"])
            elif not same_value(m["type"], m["value"], jm[m["key"]]):
                bad.append("json metadata %s: inspect shows %r, the reader %r" % (m["key"], jm[m["key"]], m["value"]))
    else:
        expect("json metadata", {m["key"]: m["value"] for m in facts["metadata"]}, ij.get("metadata"))
        shards = ij.get("shards") or [{}]
        expect("json shards", [{"path": ij.get("path"), "size": facts["size"], "data_offset": facts["data_offset"]}],
               shards)
        expect("json data_offset", facts["data_offset"], ij.get("data_offset"))
    jt = ij.get("tensors", [])
    expect("json tensor count", len(facts["tensors"]), len(jt))
    for want, got in zip(facts["tensors"], jt):
        g = {"name": got.get("name"), "type": str(got.get("type", got.get("dtype"))).upper(),
             "shape": got.get("shape"), "offset": got.get("offset"), "nbytes": got.get("nbytes")}
        w = dict(want, type=want["type"].upper())
        expect("json tensor %s" % want["name"], w, g)
    # --- text
    lines = text.split("\n")
    hdr = {}
    for ln in lines[:6]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdr[k.strip()] = v.strip()
    if gguf:
        expect("text format", "gguf v%d, %d bytes" % (facts["version"], facts["size"]), hdr.get("format"))
        expect("text alignment", str(facts["alignment"]), hdr.get("alignment"))
        expect("text data offset", str(facts["data_offset"]), hdr.get("data offset"))
    else:
        expect("text shard", "shard 0: %s, %d bytes, data offset %d" % (ij.get("path"), facts["size"],
                                                                        facts["data_offset"]), lines[2].strip())

    def section(title):
        i = next((n for n, ln in enumerate(lines) if ln.startswith(title)), None)
        if i is None:
            bad.append("text: no '%s' section" % title)
            return []
        out = []
        for ln in lines[i + 1:]:
            if not ln.strip():
                break
            out.append(ln)
        return out

    tm = section("metadata (%d keys):" % len(facts["metadata"]))
    expect("text metadata rows", len(facts["metadata"]), len(tm))
    for want, ln in zip(facts["metadata"], tm):
        f = ln.split(None, 2 if gguf else 1)
        if gguf:
            vt = VTYPES.get(want["type"], "?")
            if want["type"] == "STRING":
                # shown whole when short and plain (longer or escaped ones: the JSON check holds them)
                v = want["value"]
                plain = len(v) <= 120 and all(" " <= c <= "~" and c != "\\" for c in v)
                ok = f[:2] == [want["key"], vt] and len(f) == 3 and (f[2] == '"%s"' % v or
                                                                     (not plain and f[2].startswith('"')))
            elif want["type"] == "ARRAY":
                # the element type and count (the elements: the JSON check)
                et = "[%s x %d]" % (VTYPES.get(want["element_type"], "?"), len(want["value"]))
                ok = f[:2] == [want["key"], vt] and len(f) == 3 and f[2].startswith(et + " [")
            else:
                try:
                    v = float(f[2]) if want["type"] in ("FLOAT32", "FLOAT64") else \
                        (f[2] == "true") if want["type"] == "BOOL" else int(f[2])
                except (ValueError, IndexError):
                    v = None
                ok = f[:2] == [want["key"], vt] and v is not None and same_value(want["type"], want["value"], v)
        else:
            ok = f == [want["key"], '"%s"' % want["value"]]
        if not ok:
            bad.append("text metadata row %r, the reader %r" % (ln, want))
    tt = section("tensors (%d):" % len(facts["tensors"]))[1:]  # the column titles first, the total last
    total = "total: %d tensors, %d bytes of data" % (len(facts["tensors"]), sum(t["nbytes"] for t in facts["tensors"]))
    expect("text total", total, tt.pop().strip() if tt else None)
    expect("text tensor rows", len(facts["tensors"]), len(tt))
    for want, ln in zip(facts["tensors"], tt):
        f = ln.split()
        shape = " x ".join(str(x) for x in want["shape"])
        # gguf: name type shape... offset bytes bpw; safetensors: name dtype shape... offset bytes
        k = 3 if gguf else 2
        got = [f[0], f[1].upper(), " ".join(f[2:len(f) - k]), f[len(f) - k], f[len(f) - k + 1]] if len(f) > 4 else f
        w = [want["name"], want["type"].upper(), shape, str(want["offset"]), str(want["nbytes"])]
        if got != w:
            bad.append("text tensor row %r, the reader %r" % (ln, w))
    return bad


def main(argv):
    if len(argv) == 3 and argv[1] == "gguf-py":
        json.dump(gguf_py_facts(argv[2]), sys.stdout, indent=1)
        print()
        return 0
    if len(argv) == 3 and argv[1] == "safetensors":
        json.dump(safetensors_facts(argv[2]), sys.stdout, indent=1)
        print()
        return 0
    if len(argv) == 6 and argv[1] == "check":
        facts = json.load(open(argv[2]))
        with open(argv[4]) as f:
            ij = json.load(f)
        with open(argv[5], encoding="utf-8", errors="replace") as f:
            text = f.read()
        bad = check(facts, argv[3], ij, text)
        for b in bad:
            print(b)
        if not bad:
            print("%d metadata keys, %d tensors" % (len(facts["metadata"]), len(facts["tensors"])))
        return 1 if bad else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
