#!/bin/bash
# tests/cli/sha256-paths.sh - both SHA-256 block paths give the true digests.
#
# blockhash.c digests blocks through OpenSSL's provider functions on 3.0.x
# and through plain EVP elsewhere; QUANTAUDIT_SHA256=evp forces EVP.  This
# script runs the blockhash suite (FIPS 180-2 vectors, every short length,
# cut points, Merkle roots) once more with the switch (make check runs it
# without), then hashes fixtures through the CLI under both paths.
# Sources of truth: the FIPS vectors in check_blockhash.c, `sha256sum` for
# whole files, and Python's hashlib for every tensor digest, every block
# digest and every Merkle root (computed here from the file's bytes, by the
# definitions in blockhash.h), which the two paths must both equal.
. "$(dirname "$0")/lib.sh"
build=$(dirname "$bin")
py=${PYTHON3:-python3}

# the unit suite under the forced EVP path (its block_path case checks the switch took)
if QUANTAUDIT_SHA256=evp "$build/tests/unit/check_blockhash" >"$TMP/unit" 2>&1; then
	ok "check_blockhash with QUANTAUDIT_SHA256=evp"
else
	bad "check_blockhash with QUANTAUDIT_SHA256=evp: $(tail -5 "$TMP/unit")"
fi

st=$top/fixtures/models/micro-qwen2.safetensors
gg=$top/fixtures/models/micro-qwen2.pure-q4_K.transposed.gguf
for f in "$st" "$gg"; do
	n=$(basename "$f")
	"$bin" hash --blocks --json "$f" >"$TMP/auto.json" 2>"$TMP/err" || { bad "$n: hash (default path) failed: $(cat "$TMP/err")"; continue; }
	QUANTAUDIT_SHA256=evp "$bin" hash --blocks --json "$f" >"$TMP/evp.json" 2>"$TMP/err" || { bad "$n: hash (evp) failed: $(cat "$TMP/err")"; continue; }
	cp "$TMP/evp.json" "$TMP/$n.json"
	if cmp -s "$TMP/auto.json" "$TMP/evp.json"; then ok "$n: both paths write the same manifest"; else bad "$n: the two paths differ"; fi
	want=$(sha256sum "$f" | cut -d' ' -f1)
	got=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["file"]["sha256"])' "$TMP/evp.json")
	if [ "$want" = "$got" ]; then ok "$n: file digest equals sha256sum"; else bad "$n: file digest $got, sha256sum $want"; fi
done

# every tensor, block and Merkle root of the safetensors file against hashlib
# (the loop above held both paths' manifests byte-equal, so checking one covers both)
if "$py" - "$st" "$TMP/$(basename "$st").json" >"$TMP/py" 2>&1 <<'PY'
import hashlib, json, struct, sys
raw = open(sys.argv[1], 'rb').read()
(hlen,) = struct.unpack('<Q', raw[:8])
base = 8 + hlen
m = json.load(open(sys.argv[2]))
n = 0
for t in m['tensors']:
    data = raw[base + t['offset']: base + t['offset'] + t['nbytes']]
    assert hashlib.sha256(data).hexdigest() == t['sha256'], t['name']
    bb = t['block_bytes']
    blocks = [hashlib.sha256(data[i:i + bb]).digest() for i in range(0, len(data), bb)]
    assert [b.hex() for b in blocks] == t['block_sha256'], t['name']
    assert hashlib.sha256(b''.join(blocks)).hexdigest() == t['merkle_root'], t['name']
    n += len(blocks)
print(n)
PY
then
	ok "safetensors: every tensor, block ($(cat "$TMP/py") blocks) and Merkle root equals hashlib"
else
	bad "safetensors: digests differ from hashlib: $(tail -3 "$TMP/py")"
fi

echo "sha256-paths: $pass passed, $fail failed"
[ "$fail" = 0 ]
