#!/bin/bash
# tests/cli/remote.sh - every command on remote inputs, against a fake Hub and CDN
# (tests/fakehub.py) on 127.0.0.1.
#
# Source of truth: the same command run on the same bytes as local files (the mmap
# path, which never touches libcurl), plus the fake servers' own counters (bytes
# served, requests, Authorization headers seen).  Paths and the "transfer" object
# are the only differences allowed between a remote and a local output.
. "$(dirname "$0")/lib.sh"
PY=${PYTHON3:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
	echo "SKIP: python3 is needed for the fake Hub"
	exit 77
fi
hub_pid=""
cleanup_hook() { [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null; }

F=fixtures/models
REF=$F/micro-qwen2.safetensors
ART=$F/micro-qwen2.Q4_K_M.corrupt.gguf
TRANS=$F/micro-qwen2.pure-q4_K.transposed.gguf

# ---------------------------------------------------------------- the repositories
R=$TMP/root
mkdir -p "$R/org/micro" "$R/org/micro-GGUF" "$R/org/sharded" "$R/org/other" "$TMP/local-sharded" "$R/org/split-GGUF"
cp "$REF" "$R/org/micro/model.safetensors"
cp "$ART" "$R/org/micro-GGUF/micro-qwen2.Q4_K_M.gguf"
cp "$TRANS" "$R/org/micro-GGUF/micro-qwen2.pure-q4_K.gguf"
cp "$ART" "$R/org/micro-GGUF/mmproj-micro-qwen2-Q4_K_M.gguf"
cp "$ART" "$R/org/micro-GGUF/micro-qwen2.Q4_K_M.imatrix.gguf"
cp "$TRANS" "$R/org/micro-GGUF/micro-qwen2.Q8_0.gguf"
cp "$TRANS" "$R/org/micro-GGUF/micro-v2-Q8_0.gguf"
cp "$ART" "$R/org/other/weights.gguf"
# A two-shard checkpoint with its index, split from the fixture (same tensors, same bytes),
# and the artifact split as llama-gguf-split does (gguf-split.cpp: the first shard keeps
# every key, later shards carry only split.no/split.count/split.tensors.count; each shard
# is a GGUF with its own tensor infos and aligned data).
"$PY" - "$REF" "$TMP/local-sharded" "$ART" "$R/org/split-GGUF/micro-qwen2-Q4_K_M" <<'EOF'
import json, struct, sys
gsrc, gout = sys.argv[3], sys.argv[4]
g = open(gsrc, "rb").read()
pos = 24
_, ver, nt, nkv = struct.unpack("<4sIQQ", g[:24])
def skip(t, p):
    fixed = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    if t in fixed:
        return p + fixed[t]
    if t == 8:
        return p + 8 + struct.unpack("<Q", g[p:p + 8])[0]
    et, n = struct.unpack("<IQ", g[p:p + 12])
    p += 12
    for _ in range(n):
        p = skip(et, p)
    return p
kvs, align = [], 32
for _ in range(nkv):
    start = pos
    kl = struct.unpack("<Q", g[pos:pos + 8])[0]
    key = g[pos + 8:pos + 8 + kl].decode()
    t = struct.unpack("<I", g[pos + 8 + kl:pos + 12 + kl])[0]
    pos = skip(t, pos + 12 + kl)
    if key == "general.alignment":
        align = struct.unpack("<I", g[pos - 4:pos])[0]
    kvs.append(g[start:pos])
tis = []
for _ in range(nt):
    nl = struct.unpack("<Q", g[pos:pos + 8])[0]
    nd = struct.unpack("<I", g[pos + 8 + nl:pos + 12 + nl])[0]
    q = pos + 12 + nl + 8 * nd
    typ, off = struct.unpack("<IQ", g[q:q + 12])
    tis.append((g[pos:q + 4], off))
    pos = q + 12
data0 = (pos + align - 1) // align * align
ends = sorted(o for _, o in tis)[1:] + [len(g) - data0]
size = {o: e - o for o, e in zip(sorted(o for _, o in tis), ends)}
def kv(key, t, fmt, v):
    k = key.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<I", t) + struct.pack(fmt, v)
half = len(tis) // 2
for i, part in enumerate([tis[:half], tis[half:]]):
    split = [kv("split.no", 2, "<H", i), kv("split.count", 2, "<H", 2), kv("split.tensors.count", 5, "<i", len(tis))]
    keys = (kvs if i == 0 else []) + split
    body, infos, off = b"", b"", 0
    for head, o in part:
        blob = g[data0 + o:data0 + o + size[o]]
        pad = (-off) % align
        body += b"\0" * pad
        off += pad
        infos += head + struct.pack("<Q", off)
        body += blob
        off += len(blob)
    h = struct.pack("<4sIQQ", b"GGUF", ver, len(part), len(keys)) + b"".join(keys) + infos
    h += b"\0" * ((-len(h)) % align)
    open("%s-%05d-of-00002.gguf" % (gout, i + 1), "wb").write(h + body)
src, out = sys.argv[1], sys.argv[2]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
hdr = json.loads(b[8:8 + n])
meta = hdr.pop("__metadata__", None)
names = sorted(hdr, key=lambda k: hdr[k]["data_offsets"][0])
half = len(names) // 2
wmap = {}
for i, part in enumerate([names[:half], names[half:]]):
    fn = "model-%05d-of-00002.safetensors" % (i + 1)
    h, data, off = {}, b"", 0
    for k in part:
        s, e = hdr[k]["data_offsets"]
        t = b[8 + n + s:8 + n + e]
        h[k] = dict(hdr[k], data_offsets=[off, off + len(t)])
        data += t
        off += len(t)
        wmap[k] = fn
    if meta:
        h["__metadata__"] = meta
    j = json.dumps(h).encode()
    j += b" " * (-len(j) % 8)
    open(out + "/" + fn, "wb").write(struct.pack("<Q", len(j)) + j + data)
json.dump({"metadata": {}, "weight_map": wmap}, open(out + "/model.safetensors.index.json", "w"))
EOF
cp "$TMP/local-sharded"/* "$R/org/sharded/"

# ---------------------------------------------------------------- the servers
"$PY" tests/fakehub.py serve "$R" "$TMP/ports" 900 2>"$TMP/hub.log" &
hub_pid=$!
for _ in $(seq 600); do [ -s "$TMP/ports" ] && break; sleep 0.1; done
if [ ! -s "$TMP/ports" ]; then echo "FAIL  the fake Hub did not start: $(cat "$TMP/hub.log")"; exit 1; fi
read -r HUB CDN <"$TMP/ports"

# hget PATH: a GET to the fake Hub's control side, body on stdout (bash only, no client needed).
hget() {
	exec 3<>"/dev/tcp/127.0.0.1/$HUB" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
	sed '1,/^\r$/d' <&3
	exec 3<&-
}
ctl() { hget "/__control?$1" >/dev/null; }
stat_of() { hget /__stats | grep -o "\"$1\": [0-9-]*" | grep -o '[0-9-]*$'; }

export HF_ENDPOINT=http://127.0.0.1:$HUB
export XDG_CACHE_HOME=$TMP/xdg
export HF_HOME=$TMP/hfhome
unset HF_TOKEN HF_TOKEN_PATH HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_HUB_OFFLINE
mkdir -p "$XDG_CACHE_HOME" "$HF_HOME"
Q=(--retry-wait-ms 1 --quiet)

# norm FILE: drop the top-level "transfer" object (the last key of a JSON output)
# and reduce paths and URLs to base names.
norm() {
	awk '
		/^  "transfer": \{/ { skip = 1; if (n) sub(/,$/, "", line[n]); next }
		skip && /^  \}/ { skip = 0; next }
		skip { next }
		{ line[++n] = $0 }
		END { for (i = 1; i <= n; i++) print line[i] }' "$1" |
		sed -E -e 's#(hf|https?)://[^ "]*/##g' -e "s#$R/[^ \"]*/##g" -e "s#$TMP/[^ \"]*/##g"
}

# same NAME WANT_EXIT "REMOTE ARGS" "LOCAL ARGS": remote output equals local output, both exit WANT.
same() {
	local name=$1 want=$2
	# shellcheck disable=SC2086
	"$bin" $3 "${Q[@]}" >"$TMP/r.out" 2>"$TMP/r.err"
	local rr=$?
	# shellcheck disable=SC2086
	"$bin" $4 >"$TMP/l.out" 2>"$TMP/l.err"
	local lr=$?
	norm "$TMP/r.out" >"$TMP/r.norm"
	norm "$TMP/l.out" >"$TMP/l.norm"
	if [ "$rr" = "$want" ] && [ "$lr" = "$want" ] && cmp -s "$TMP/r.norm" "$TMP/l.norm" && [ -s "$TMP/l.out" ]; then
		ok "$name"
	else
		bad "$name" "exit remote $rr local $lr (want $want); $(head -c 300 "$TMP/r.err")"
		diff "$TMP/l.norm" "$TMP/r.norm" | head -n 10
	fi
}

# one_line_exit NAME WANT PATTERN ARGS...: exactly one stderr line matching PATTERN.
one_line_exit() {
	local name=$1 want=$2 pat=$3
	shift 3
	"$bin" "$@" >"$TMP/o.out" 2>"$TMP/o.err"
	local rc=$?
	if [ "$rc" = "$want" ] && [ "$(wc -l <"$TMP/o.err")" = 1 ] && grep -q -E "$pat" "$TMP/o.err"; then
		ok "$name"
	else
		bad "$name" "exit $rc (want $want): $(head -c 400 "$TMP/o.err")"
	fi
}

# blobs_sound: every blob in the cache hashes to its name.
blobs_sound() {
	local f
	for f in "$XDG_CACHE_HOME"/quantaudit/blobs/*; do
		[ -e "$f" ] || continue
		[ "$(sha256sum "$f" | cut -c1-64)" = "$(basename "$f")" ] || return 1
	done
	return 0
}

# ---------------------------------------------------------------- every command, remote = local
# The local side reads the very files the servers serve, under the same base names.
HFREF=hf://org/micro
HFART=hf://org/micro-GGUF:Q4_K_M
REF=$R/org/micro/model.safetensors
ART=$R/org/micro-GGUF/micro-qwen2.Q4_K_M.gguf
TRANS=$R/org/micro-GGUF/micro-qwen2.pure-q4_K.gguf
SHARDED=$R/org/sharded/model.safetensors.index.json
mkdir -p "$TMP/blob"
ARTSHA=$(sha256sum "$ART" | cut -c1-64)
export R
cp "$ART" "$TMP/blob/$ARTSHA"
same inspect-gguf 0 "inspect $HFART" "inspect $ART"
same inspect-gguf-json 0 "inspect --json $HFART" "inspect --json $ART"
same inspect-st 0 "inspect hf://org/micro/model.safetensors" "inspect $REF"
same inspect-sharded 0 "inspect hf://org/sharded" "inspect $SHARDED"
same inspect-https 0 "inspect http://127.0.0.1:$CDN/blob/$ARTSHA" "inspect $TMP/blob/$ARTSHA"
same hash-gguf 0 "hash --json $HFART" "hash --json $ART"
same hash-st-blocks 0 "hash --blocks --json hf://org/micro/model.safetensors" "hash --blocks --json $REF"
same hash-gguf-hash 0 "hash --format gguf-hash $HFART" "hash --format gguf-hash $ART"
"$bin" hash -o "$TMP/art.manifest" "$ART"
same verify 0 "verify $HFART $TMP/art.manifest --json" "verify $ART $TMP/art.manifest --json"
same diff 1 "diff $HFREF $HFART --json" "diff $REF $ART --json"
same diff-sharded 1 "diff hf://org/sharded $HFART --json" "diff $SHARDED $ART --json"
same diff-transposed 1 "diff $HFREF hf://org/micro-GGUF:pure-q4_K" "diff $REF $TRANS"
same shape-swap 1 "shape-swap $HFREF --json" "shape-swap $REF --json"
"$bin" quantize "$HFREF" --recipe Q4_K_M -o "$TMP/remote.gguf" "${Q[@]}" >/dev/null 2>&1
"$bin" quantize "$REF" --recipe Q4_K_M -o "$TMP/local.gguf" >/dev/null 2>&1
if [ -s "$TMP/local.gguf" ] && cmp -s "$TMP/remote.gguf" "$TMP/local.gguf"; then ok quantize-remote-ref
else bad quantize-remote-ref "the GGUF quantized from the remote reference differs"; fi
"$bin" diff "$HFREF" "$HFART" --json "${Q[@]}" >"$TMP/t.json" 2>/dev/null
if grep -q '"transfer"' "$TMP/t.json" && grep -q '"commit": "[0-9a-f]\{40\}"' "$TMP/t.json" &&
	! "$bin" diff "$REF" "$ART" --json | grep -q '"transfer"'; then ok transfer-object
else bad transfer-object "no transfer object with a pinned commit in a remote run, or one in a local run"; fi
# A sharded remote run: each shard's part carries its own transfer, and merge sums them (issue 10).
# Sources of truth: the fake servers' own counters over the two shard runs (requests served; body
# bytes of the hf:// files served by the CDN), the parts' objects, and the unsharded remote run above
# (everything but "transfer" the same).
ctl reset=1
"$bin" diff "$HFREF" "$HFART" --shard 1/2 --file-digests -o "$TMP/rp1.json" "${Q[@]}" 2>"$TMP/rp.err"
"$bin" diff "$HFREF" "$HFART" --shard 2/2 -o "$TMP/rp2.json" "${Q[@]}" 2>>"$TMP/rp.err"
served=$(hget /__stats)
"$bin" merge "$TMP/rp1.json" "$TMP/rp2.json" --json >"$TMP/rm.json" 2>>"$TMP/rp.err"
rc=$?
if [ "$rc" = 1 ] && [ -s "$TMP/rm.json" ] && [ "$(norm "$TMP/rm.json")" = "$(norm "$TMP/t.json")" ]; then ok shard-merge-remote
else bad shard-merge-remote "merge exit $rc (want 1), or its JSON differs from the unsharded run's: $(head -c 300 "$TMP/rp.err")"; fi
got=$("$PY" - "$TMP/rp1.json" "$TMP/rp2.json" "$TMP/rm.json" "$served" 2>&1 <<'PY'
import json, sys
p = [json.load(open(f))["transfer"] for f in sys.argv[1:3]]
m = json.load(open(sys.argv[3]))["transfer"]
s = json.loads(sys.argv[4])
bad = ["%s %d, parts %d + %d" % (k, m[k], p[0][k], p[1][k])
       for k in ("requests", "bytes", "retries", "cache_hits") if m[k] != p[0][k] + p[1][k]]
urls = []
for x in p[0]["inputs"] + p[1]["inputs"]:
    if x["url"] not in urls:
        urls.append(x["url"])
if [i["url"] for i in m["inputs"]] != urls:
    bad.append("inputs %s, parts %s" % ([i["url"] for i in m["inputs"]], urls))
for i in m["inputs"]:
    of = [x for q in p for x in q["inputs"] if x["url"] == i["url"]]
    if (i["bytes"], i["requests"], i["local_peak_bytes"], i.get("commit")) != (
            sum(x["bytes"] for x in of), sum(x["requests"] for x in of), max(x["local_peak_bytes"] for x in of),
            of[0].get("commit")):
        bad.append("input %s: %s, parts %s" % (i["url"], i, of))
if m["requests"] != s["hub_requests"] + s["cdn_requests"]:
    bad.append("requests %d, the servers answered %d" % (m["requests"], s["hub_requests"] + s["cdn_requests"]))
hf = sum(i["bytes"] for i in m["inputs"] if i["url"].startswith("hf://"))
if hf != s["cdn_bytes"]:
    bad.append("hf:// bytes %d, the CDN served %d" % (hf, s["cdn_bytes"]))
print("; ".join(bad) or "%d requests, %d bytes" % (m["requests"], m["bytes"]))
PY
)
case $got in *" requests, "*" bytes") ok "shard-merge-transfer-summed ($got)" ;; *) bad shard-merge-transfer-summed "$got" ;; esac
mkdir -p "$TMP/rep"
"$bin" diff "$HFREF" "$HFART" --report "$TMP/rep/audit.md" "${Q[@]}" >/dev/null 2>&1
c1=$(printf 'org/micro' | sha1sum | cut -c1-40)
c2=$(printf 'org/micro-GGUF' | sha1sum | cut -c1-40)
if grep -q "^quantaudit diff .*hf://org/micro@$c1/model.safetensors hf://org/micro-GGUF@$c2/micro-qwen2.Q4_K_M.gguf$" "$TMP/rep/audit.md"; then
	ok falsifier-pinned-commit
else bad falsifier-pinned-commit "$(grep -A3 Falsifier "$TMP/rep/audit.md" | tail -n 2)"; fi
"$bin" hash -o "$TMP/remote.manifest" "$HFART" "${Q[@]}" 2>/dev/null
if [ -s "$TMP/remote.manifest" ] && ! grep -q transfer "$TMP/remote.manifest"; then ok manifest-without-transfer
else bad manifest-without-transfer "a manifest written from a remote input carries transfer data"; fi

# ---------------------------------------------------------------- split GGUF, local and remote
# Truth: the unsplit artifact.  The split one must give the same per-tensor results;
# only the artifact's own path, size and digest differ.
SPLIT=$R/org/split-GGUF/micro-qwen2-Q4_K_M-00001-of-00002.gguf
drop_key() { awk -v k="  \"$1\": {" '
	index($0, k) == 1 { skip = 1; next }
	skip && /^  \}/ { skip = 0; next }
	skip { next }
	{ print }' "$2"; }
"$bin" diff "$REF" "$SPLIT" --json >"$TMP/split.json" 2>"$TMP/split.err"
rc=$?
"$bin" diff "$REF" "$ART" --json >"$TMP/whole.json" 2>/dev/null
if [ $rc = 1 ] && grep -q '"tensors"' "$TMP/split.json" &&
	cmp -s <(drop_key artifact "$TMP/split.json") <(drop_key artifact "$TMP/whole.json"); then ok split-gguf-diff-local
else bad split-gguf-diff-local "exit $rc: $(head -c 300 "$TMP/split.err")"; diff <(drop_key artifact "$TMP/split.json") <(drop_key artifact "$TMP/whole.json") | head -n 10; fi
if [ "$("$bin" inspect --json "$SPLIT" | grep -c '"name":')" = "$("$bin" inspect --json "$ART" | grep -c '"name":')" ]; then ok split-gguf-inspect-all-tensors
else bad split-gguf-inspect-all-tensors "the first shard does not list every tensor"; fi
same split-gguf-diff-remote 1 "diff $HFREF hf://org/split-GGUF:Q4_K_M --json" "diff $REF $SPLIT --json"
same split-gguf-inspect-remote 0 "inspect hf://org/split-GGUF:Q4_K_M" "inspect $SPLIT"
same split-gguf-hash-remote 0 "hash --json hf://org/split-GGUF:Q4_K_M" "hash --json $SPLIT"
mkdir -p "$TMP/lonely"
cp "$SPLIT" "$TMP/lonely/"
one_line_exit split-gguf-missing-shard 4 "lonely/micro-qwen2-Q4_K_M-00002-of-00002.gguf: cannot open" inspect "$TMP/lonely/micro-qwen2-Q4_K_M-00001-of-00002.gguf"

# ---------------------------------------------------------------- header-only reads
ctl reset=1
rm -rf "$XDG_CACHE_HOME/quantaudit"
"$bin" inspect --json "$HFART" "${Q[@]}" >"$TMP/i.json"
served=$(stat_of cdn_bytes)
dataoff=$(grep -o '"data_offset": [0-9]*' "$TMP/i.json" | grep -o '[0-9]*$')
if [ -n "$served" ] && [ -n "$dataoff" ] && [ "$served" -le $((dataoff + 65536)) ]; then ok "inspect-transfers-header ($served bytes for a $dataoff-byte header)"
else bad inspect-transfers-header "served $served bytes for a header of $dataoff"; fi
ctl reset=1
"$bin" inspect hf://org/micro/model.safetensors "${Q[@]}" >/dev/null
served=$(stat_of cdn_bytes)
hlen=$(($(od -An -t u8 -N 8 "$REF" | tr -d ' ') + 8))
if [ -n "$served" ] && [ "$served" -le $((hlen + 65536)) ]; then ok "inspect-st-transfers-header ($served bytes for a $hlen-byte header)"
else bad inspect-st-transfers-header "served $served bytes for a header of $hlen"; fi

# ---------------------------------------------------------------- QUANT matching
"$bin" inspect hf://org/micro-GGUF:Q2_K "${Q[@]}" >/dev/null 2>"$TMP/none.err"
rc=$?
if [ $rc = 2 ] && head -n 1 "$TMP/none.err" | grep -q 'no GGUF file matches Q2_K$' &&
	[ "$(grep -c '^  .*\.gguf$' "$TMP/none.err")" = 4 ] && ! grep -q -E 'mmproj|imatrix' "$TMP/none.err"; then ok quant-none-lists-candidates
else bad quant-none-lists-candidates "exit $rc: $(cat "$TMP/none.err")"; fi
"$bin" inspect hf://org/micro-GGUF:Q8_0 "${Q[@]}" >/dev/null 2>"$TMP/amb.err"
rc=$?
if [ $rc = 2 ] && grep -q 'more than one GGUF file matches Q8_0' "$TMP/amb.err" &&
	grep -q '^  micro-qwen2.Q8_0.gguf$' "$TMP/amb.err" && grep -q '^  micro-v2-Q8_0.gguf$' "$TMP/amb.err"; then ok quant-several-lists-candidates
else bad quant-several-lists-candidates "exit $rc: $(cat "$TMP/amb.err")"; fi
same quant-skips-mmproj-imatrix 0 "inspect hf://org/micro-GGUF:q4_k_m" "inspect $ART"
one_line_exit repo-without-checkpoint 2 'no model.safetensors' inspect hf://org/other "${Q[@]}"
one_line_exit bad-hf-url 2 'ORG/NAME' inspect hf://justone "${Q[@]}"
same revision-pr 0 "inspect hf://org/micro-GGUF@refs/pr/1/micro-qwen2.Q4_K_M.gguf" "inspect $ART"
same dataset 0 "inspect hf://datasets/org/micro-GGUF/micro-qwen2.Q4_K_M.gguf" "inspect $ART"
one_line_exit missing-file 4 'HTTP 404' inspect hf://org/micro/nope.gguf "${Q[@]}"

# ---------------------------------------------------------------- pinning
ctl reset=1
"$bin" inspect hf://org/sharded "${Q[@]}" >/dev/null
revs=$(hget /__stats | grep -o '"revs": \[[^]]*\]')
commit=$(printf 'org/sharded' | sha1sum | cut -c1-40)
if printf '%s' "$revs" | grep -q "\"main\"" && printf '%s' "$revs" | grep -q "$commit" &&
	[ "$(printf '%s' "$revs" | grep -o '"main"' | wc -l)" = 1 ]; then ok pinned-commit
else bad pinned-commit "resolve revisions: $revs"; fi

# ---------------------------------------------------------------- auth
ctl reset=1
rm -rf "$XDG_CACHE_HOME/quantaudit"
HF_TOKEN=hf_testSECRETtoken "$bin" diff "$HFREF" "$HFART" --json "${Q[@]}" >"$TMP/a.out" 2>"$TMP/a.err"
if [ "$(stat_of auth_hub)" -gt 0 ] && [ "$(stat_of auth_cdn)" = 0 ] && [ "$(stat_of cdn_requests)" -gt 0 ] &&
	! grep -q hf_testSECRETtoken "$TMP/a.out" "$TMP/a.err"; then ok token-hub-only
else bad token-hub-only "hub saw $(stat_of auth_hub), cdn saw $(stat_of auth_cdn) Authorization headers"; fi
ctl reset=1
printf 'hf_fileTOKEN\n' >"$HF_HOME/token"
"$bin" inspect "$HFART" "${Q[@]}" >/dev/null 2>&1
if [ "$(stat_of auth_hub)" -gt 0 ] && [ "$(stat_of auth_cdn)" = 0 ]; then ok token-file
else bad token-file "hub saw $(stat_of auth_hub), cdn saw $(stat_of auth_cdn)"; fi
rm -f "$HF_HOME/token"
if [ "$(stat_of identity)" = "$(stat_of hub_requests)" ]; then ok identity-encoding
else bad identity-encoding "$(stat_of identity) of $(stat_of hub_requests) requests asked for identity"; fi

# ---------------------------------------------------------------- faults
# fault NAME COUNT WANT_EXIT: the diff survives the fault with the local result.
fault() {
	ctl reset=1
	ctl "fault=$1&count=$2"
	rm -rf "$XDG_CACHE_HOME/quantaudit"
	same "fault-$1" "$3" "diff $HFREF $HFART --json --cache-blobs" "diff $REF $ART --json"
	if blobs_sound; then ok "fault-$1-cache-sound"; else bad "fault-$1-cache-sound" "a blob does not hash to its name"; fi
}
fault 429 1 1
fault 503 3 1
fault drop 2 1
fault truncate 2 1
fault slow 2 1
fault norange -1 1
if grep -q 'ignores byte ranges' "$TMP/r.err"; then ok norange-warns; else bad norange-warns "no warning: $(cat "$TMP/r.err")"; fi
ctl reset=1
"$bin" diff "$HFREF" "$HFART" --json --retry-wait-ms 1 >"$TMP/rt.json" 2>/dev/null
ctl reset=1
ctl "fault=503&count=2"
"$bin" diff "$HFREF" "$HFART" --json --retry-wait-ms 1 >"$TMP/rt.json" 2>/dev/null
if grep -q '"retries": 2' "$TMP/rt.json"; then ok retries-counted; else bad retries-counted "$(grep retries "$TMP/rt.json")"; fi

ctl reset=1
ctl "fault=503&count=-1"
rm -rf "$XDG_CACHE_HOME/quantaudit"
one_line_exit fault-503-forever 4 "^quantaudit: hf://org/micro-GGUF@main/micro-qwen2.Q4_K_M.gguf: (hf://org/micro-GGUF@main/micro-qwen2.Q4_K_M.gguf: )?HTTP 503 after retries$" \
	inspect "$HFART" --retries 2 --retry-wait-ms 1 --cache-blobs
if [ "$(stat_of cdn_requests)" = 3 ]; then ok retries-option; else bad retries-option "$(stat_of cdn_requests) CDN requests for --retries 2"; fi
ctl reset=1
ctl "fault=badetag&count=-1"
rm -rf "$XDG_CACHE_HOME/quantaudit"
one_line_exit fault-badetag 4 "micro-qwen2.Q4_K_M.gguf: its SHA-256 differs from the Hub's" \
	diff "$HFREF" "$HFART" --cache-blobs "${Q[@]}"
if [ -z "$(ls "$XDG_CACHE_HOME/quantaudit/blobs" 2>/dev/null | grep "$(sha256sum "$ART" | cut -c1-64)")" ] && blobs_sound; then
	ok fault-badetag-not-cached
else bad fault-badetag-not-cached "a file that failed its check was kept"; fi
ctl reset=1

# ---------------------------------------------------------------- reproduce a remote artifact
# Truth: the fake Hub's own counters (HEAD requests, body bytes per file served) and the same
# reproduce run on the same files locally.  The artifact's digest is its first hop's
# X-Linked-Etag; with equal digests no byte of the artifact is served.
mkdir -p "$R/org/rep-GGUF" "$R/org/rep-bad" "$TMP/rep-local/syn"
"$bin" synth --arch qwen2 --hidden 256 --intermediate 256 --heads 4 --kv-heads 1 --vocab 32 --layers 1 \
	-o "$TMP/rep-local/syn/model.safetensors" >/dev/null 2>&1
RB=$R/org/rep-GGUF/tiny-qwen2.BF16.gguf
"$bin" quantize "$TMP/rep-local/syn/model.safetensors" --type bf16 -o "$RB" >/dev/null 2>&1
"$bin" quantize "$RB" --recipe Q4_K_M -o "$R/org/rep-GGUF/tiny-qwen2.Q4_K_M.gguf" >/dev/null 2>&1
"$bin" quantize "$RB" --recipe Q4_K_M --pure -o "$R/org/rep-GGUF/tiny-qwen2.Q4_K_M.pure.gguf" >/dev/null 2>&1
cp "$R/org/rep-GGUF/tiny-qwen2.Q4_K_M.gguf" "$R/org/rep-GGUF/weights.gguf"
cp "$R/org/rep-GGUF/tiny-qwen2.Q4_K_M.gguf" "$R/org/rep-bad/tiny-qwen2.Q4_K_M.gguf"
printf '\x5a' | dd of="$R/org/rep-bad/tiny-qwen2.Q4_K_M.gguf" bs=1 seek=150000 conv=notrunc 2>/dev/null
HRB=hf://org/rep-GGUF/tiny-qwen2.BF16.gguf
# served NAME: body bytes the servers sent of the file NAME since the last reset
# served_but_ref: body bytes served of every file but the reference since the last reset (files
# with the same bytes are one blob on the CDN, named by the first of them it finds)
served_but_ref() { hget /__stats | "$PY" -c "import json,sys; print(sum(v for k, v in json.load(sys.stdin)['file_bytes'].items() if k != 'tiny-qwen2.BF16.gguf'))"; }
# rep NAME WANT ARTIFACT-URL [ARGS]: run reproduce --json after a reset; fields in $TMP/rep.json
rep() {
	local name=$1 want=$2
	shift 2
	ctl reset=1
	"$bin" reproduce "$HRB" "$@" --json "${Q[@]}" >"$TMP/rep.json" 2>"$TMP/rep.err"
	local rc=$?
	[ "$rc" = "$want" ] || { bad "$name" "exit $rc (want $want): $(head -c 300 "$TMP/rep.err")"; return 1; }
}
rj() { "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($1)" "$TMP/rep.json"; }
art_in() { rj "[(i['bytes'], i['requests']) for i in j['transfer']['inputs'] if i['url'].endswith('$1')]"; }
if rep reproduce-etag-no-artifact-byte 0 hf://org/rep-GGUF/tiny-qwen2.Q4_K_M.gguf; then
	got="$(served_but_ref) $(stat_of head_requests) $(art_in tiny-qwen2.Q4_K_M.gguf) $(rj 'j["artifact"]["header_read"], j["artifact"]["sha256_source"], j["recipe"]["source"]')"
	if [ "$got" = "0 1 [(0, 1)] False x-linked-etag file name" ]; then ok reproduce-etag-no-artifact-byte
	else bad reproduce-etag-no-artifact-byte "served, HEADs, transfer, header read, source: $got"; fi
fi
if rep reproduce-etag-https 0 "http://127.0.0.1:$HUB/org/rep-GGUF/resolve/main/tiny-qwen2.Q4_K_M.gguf"; then
	got="$(served_but_ref) $(rj 'j["result"], j["artifact"]["sha256_source"]')"
	[ "$got" = "0 reproduced x-linked-etag" ] && ok reproduce-etag-https || bad reproduce-etag-https "$got"
fi
if rep reproduce-etag-recipe-given 0 hf://org/rep-GGUF/weights.gguf --recipe Q4_K_M; then
	got="$(served_but_ref) $(rj 'j["artifact"]["header_read"], j["recipe"]["source"]')"
	[ "$got" = "0 False given" ] && ok reproduce-etag-recipe-given || bad reproduce-etag-recipe-given "$got"
fi
# no recipe in the name: the header is read (and only the header's chunk), never the data
dataoff=$("$bin" inspect --json "$R/org/rep-GGUF/weights.gguf" | grep -o '"data_offset": [0-9]*' | grep -o '[0-9]*$')
if rep reproduce-header-only 0 hf://org/rep-GGUF/weights.gguf; then
	n=$(served_but_ref)
	got=$(rj 'j["artifact"]["header_read"], j["artifact"]["body_bytes_read"], j["recipe"]["source"]')
	if [ "$got" = "True 0 general.file_type" ] && [ "$n" -le $((dataoff + 65536)) ]; then ok "reproduce-header-only ($n bytes served, header $dataoff)"
	else bad reproduce-header-only "$got, $n bytes served for a $dataoff-byte header"; fi
fi
# the name's recipe alone is not the file (--pure): the header is read, --pure inferred, made again
if rep reproduce-inferred-from-header 0 hf://org/rep-GGUF/tiny-qwen2.Q4_K_M.pure.gguf; then
	n=$(served_but_ref)
	got=$(rj 'j["recipe"]["options"], j["reproduction"]["passes"], j["artifact"]["body_bytes_read"]')
	if [ "$got" = "--pure 2 0" ] && [ "$n" -le $((dataoff + 65536)) ]; then ok "reproduce-inferred-from-header ($n bytes served)"
	else bad reproduce-inferred-from-header "$got, $n bytes served"; fi
fi
# a differing artifact: located and explained exactly as from the local file
if rep reproduce-remote-differs 1 hf://org/rep-bad/tiny-qwen2.Q4_K_M.gguf; then
	"$bin" reproduce "$RB" "$R/org/rep-bad/tiny-qwen2.Q4_K_M.gguf" --json >"$TMP/rep-local.json" 2>/dev/null
	q='j["first_difference"]["offset"], j["first_difference"]["region"], j["first_difference"]["name"], [(t["name"], t["verdict"]) for t in j["diff"]["tensors"] if t["verdict"] != "identical"]'
	got=$(rj "$q")
	want=$("$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($q)" "$TMP/rep-local.json")
	if [ -n "$want" ] && [ "$got" = "$want" ] && [ "${got%% *}" = 150000 ]; then ok "reproduce-remote-differs ($got)"
	else bad reproduce-remote-differs "remote: $got; local: $want"; fi
fi
# a Hub whose X-Linked-Etag is wrong: reading the file to locate shows it; exit 4, one line
rm -rf "$XDG_CACHE_HOME/quantaudit"
ctl "fault=badetag&count=-1"
one_line_exit reproduce-wrong-etag 4 "differs from the Hub's" reproduce "$HRB" hf://org/rep-GGUF/tiny-qwen2.Q4_K_M.gguf --no-explain "${Q[@]}"
ctl "fault=none&count=0"
# nothing the wrong digest came with stays in the cache: the next run proves the file
"$bin" reproduce "$HRB" hf://org/rep-GGUF/tiny-qwen2.Q4_K_M.gguf "${Q[@]}" >"$TMP/o.out" 2>"$TMP/o.err"
rc=$?
[ $rc = 0 ] && ok reproduce-after-wrong-etag || bad reproduce-after-wrong-etag "exit $rc: $(head -c 300 "$TMP/o.err")"
# offline: what the first hop said is remembered, so proving needs no network at all
"$bin" quantize "$HRB" --type bf16 -o "$TMP/rep-ref-copy.gguf" "${Q[@]}" --cache-blobs >/dev/null 2>"$TMP/q.err" 
ctl reset=1
"$bin" reproduce "$HRB" hf://org/rep-GGUF/tiny-qwen2.Q4_K_M.gguf --offline --cache-blobs "${Q[@]}" >"$TMP/o.out" 2>"$TMP/o.err"
rc=$?
if [ $rc = 0 ] && [ "$(stat_of hub_requests)" = 0 ] && [ "$(stat_of cdn_requests)" = 0 ]; then ok reproduce-offline
else bad reproduce-offline "exit $rc, $(stat_of hub_requests) Hub and $(stat_of cdn_requests) CDN requests: $(head -c 300 "$TMP/o.err")"; fi

# ---------------------------------------------------------------- bounded local copy
# Truth: the reference's size, and the run's own figure of the most bytes of an input held at once
# (transfer.inputs[].local_peak_bytes).  Read in file order under a 64 KiB window, the local copy
# of an 8-layer reference holds its header, the last few tensors read and the window: a small part
# of the file.  With the default window (64 MiB) the whole small file stays, so the figure is live.
rm -rf "$XDG_CACHE_HOME/quantaudit"
mkdir -p "$R/org/deep-GGUF" "$TMP/deep/syn"
"$bin" synth --arch qwen2 --hidden 256 --intermediate 256 --heads 4 --kv-heads 1 --vocab 32 --layers 8 \
	-o "$TMP/deep/syn/model.safetensors" >/dev/null 2>&1
DB=$R/org/deep-GGUF/deep.BF16.gguf
"$bin" quantize "$TMP/deep/syn/model.safetensors" --type bf16 -o "$DB" >/dev/null 2>&1
"$bin" quantize "$DB" --recipe Q8_0 -o "$R/org/deep-GGUF/deep.Q8_0.gguf" >/dev/null 2>&1
refsize=$(stat -c %s "$DB")
peak_run() {
	"$bin" reproduce hf://org/deep-GGUF/deep.BF16.gguf hf://org/deep-GGUF/deep.Q8_0.gguf --json "${Q[@]}" 2>"$TMP/rep.err" |
		"$PY" -c "import json,sys; j=json.load(sys.stdin); print(j['result'], [i['local_peak_bytes'] for i in j['transfer']['inputs'] if i['url'].endswith('BF16.gguf')][0])"
}
small=$(QUANTAUDIT_REMOTE_WINDOW=65536 peak_run)
big=$(peak_run)
if [ "${small%% *}" = reproduced ] && [ "${small##* }" -le $((refsize / 4)) ] && [ "$big" = "reproduced $refsize" ]; then
	ok "local-copy-bounded (${small##* } of $refsize bytes held at most; ${big##* } with the default window)"
else bad local-copy-bounded "64 KiB window: $small; default: $big; of $refsize $(head -c 200 "$TMP/rep.err")"; fi

# ---------------------------------------------------------------- cache and offline
rm -rf "$XDG_CACHE_HOME/quantaudit"
"$bin" diff "$HFREF" "$HFART" --json --cache-blobs "${Q[@]}" >/dev/null 2>&1
ctl reset=1
same offline-diff 1 "diff $HFREF $HFART --json --offline --cache-blobs" "diff $REF $ART --json"
same offline-inspect 0 "inspect $HFART --offline" "inspect $ART"
if [ "$(stat_of hub_requests)" = 0 ] && [ "$(stat_of cdn_requests)" = 0 ]; then ok offline-no-request
else bad offline-no-request "$(stat_of hub_requests) hub and $(stat_of cdn_requests) cdn requests"; fi
export HF_HUB_OFFLINE=1
same offline-env 0 "inspect $HFART" "inspect $ART"
one_line_exit offline-missing 4 'offline mode: .*not cached' inspect hf://org/micro-GGUF:Q8_0 --cache "$TMP/empty-cache" "${Q[@]}"
unset HF_HUB_OFFLINE
if [ "$(stat_of hub_requests)" = 0 ] && [ "$(stat_of cdn_requests)" = 0 ]; then ok offline-env-no-request
else bad offline-env-no-request "$(stat_of hub_requests) hub and $(stat_of cdn_requests) cdn requests"; fi
ctl reset=1
same cache-dir-option 0 "inspect $HFART --cache $TMP/other-cache" "inspect $ART"
if [ -d "$TMP/other-cache/heads" ]; then ok cache-dir-used; else bad cache-dir-used "nothing under --cache DIR"; fi
# A blob altered on disk is never used: it is removed and the file fetched again.
b=$XDG_CACHE_HOME/quantaudit/blobs/$(sha256sum "$ART" | cut -c1-64)
if [ -f "$b" ]; then printf 'X' | dd of="$b" bs=1 seek=5000 conv=notrunc 2>/dev/null; fi
ctl reset=1
same altered-blob-refetched 1 "diff $HFREF $HFART --json --cache-blobs" "diff $REF $ART --json"
if [ "$(stat_of cdn_bytes)" -gt 0 ] && blobs_sound; then ok altered-blob-not-trusted
else bad altered-blob-not-trusted "served $(stat_of cdn_bytes) bytes"; fi

# huggingface_hub's cache is read in place (read-only), without a request.
c=$(printf 'org/micro' | sha1sum | cut -c1-40)
mkdir -p "$HF_HOME/hub/models--org--micro/snapshots/$c" "$HF_HOME/hub/models--org--micro/refs"
printf '%s' "$c" >"$HF_HOME/hub/models--org--micro/refs/main"
cp "$REF" "$HF_HOME/hub/models--org--micro/snapshots/$c/model.safetensors"
ctl reset=1
same hf-cache 0 "inspect hf://org/micro/model.safetensors" "inspect $REF"
if [ "$(stat_of hub_requests)" = 0 ]; then ok hf-cache-no-request; else bad hf-cache-no-request "$(stat_of hub_requests) requests"; fi

ctl stop=1
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
