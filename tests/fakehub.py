#!/usr/bin/env python3
"""tests/fakehub.py - a fake Hugging Face Hub and CDN on 127.0.0.1 for the remote tests.

    fakehub.py serve ROOT PORTFILE [LIFETIME_S]
        Serve the repositories under ROOT (ROOT/ORG/NAME/...) as the Hub does:
          /ORG/NAME/resolve/REV/PATH  (and /datasets/ORG/NAME/resolve/...)
              files over 4 KiB ("LFS"): 302 to the CDN with X-Repo-Commit, X-Linked-Etag
              (the file's SHA-256), X-Linked-Size, ETag and Accept-Ranges on this first hop;
              small files: 200 from the Hub itself (ranges honoured), X-Repo-Commit, ETag.
          /api/models/ORG/NAME/tree/REV?recursive=true  the file list.
        A second server on another port is the CDN: /blob/SHA256?sig=... with byte ranges.
        Both listen on random free loopback ports, written to PORTFILE as "HUB CDN" once
        ready.  The process stops itself after LIFETIME_S seconds (default 600) or on
        /__control?stop=1.
    fakehub.py ctl HUBPORT KEY=VALUE...   set faults (fault=NAME count=N), reset=1, stop=1
    fakehub.py stats HUBPORT              print the counters as JSON

Faults (each applies to the next COUNT matching responses; count=-1 means always):
  429       the Hub answers 429 with Retry-After: 1
  503       the CDN answers 503
  drop      the CDN sends half of the body, then resets the connection
  truncate  the CDN announces the full length, sends half, then closes cleanly
  norange   the CDN ignores Range and answers 200 with the whole file
  slow      the CDN drips the body in 2 KiB pieces, 1 ms apart
  badetag   the Hub's X-Linked-Etag is not the file's SHA-256
Counters: requests and body bytes per server, body bytes per file served (file_bytes, by base
name), HEAD requests to the Hub, whether an Authorization header reached the Hub and the CDN,
and the revisions named by resolve requests.
"""
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_MIN = 4096
lock = threading.RLock()
state = {}


def reset_state():
    with lock:
        state.clear()
        state.update(fault=None, count=0, hub_requests=0, cdn_requests=0, hub_bytes=0,
                     cdn_bytes=0, auth_hub=0, auth_cdn=0, identity=0, revs=[], tree_requests=0,
                     ranges=[], head_requests=0, file_bytes={})


def take_fault(name):
    with lock:
        if state["fault"] != name or state["count"] == 0:
            return False
        if state["count"] > 0:
            state["count"] -= 1
        return True


def commit_of(repo):
    return hashlib.sha1(repo.encode()).hexdigest()


class Repo:
    def __init__(self, root):
        self.root = root
        self.sha = {}

    def path(self, repo, rel):
        base = os.path.realpath(os.path.join(self.root, repo))
        p = os.path.realpath(os.path.join(base, rel))
        if not p.startswith(base + os.sep) or not os.path.isfile(p):
            return None
        return p

    def sha256(self, p):
        if p not in self.sha:
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for b in iter(lambda: f.read(1 << 20), b""):
                    h.update(b)
            self.sha[p] = h.hexdigest()
        return self.sha[p]

    def by_sha(self, sha):
        for dp, _, fs in os.walk(self.root):
            for f in fs:
                p = os.path.join(dp, f)
                if self.sha256(p) == sha:
                    return p
        return None


def parse_range(h, size):
    if not h or not h.startswith("bytes="):
        return None
    a, _, b = h[6:].partition("-")
    start = int(a)
    end = int(b) if b else size - 1
    return start, min(end, size - 1)


class Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_kind = "hub"

    def log_message(self, *args):
        pass

    def count(self, n, p=None):
        with lock:
            state[self.server_kind + "_bytes"] += n
            if p:
                k = os.path.basename(p)
                state["file_bytes"][k] = state["file_bytes"].get(k, 0) + n

    def send_file(self, p, extra, allow_range=True):
        size = os.path.getsize(p)
        rng = parse_range(self.headers.get("Range"), size) if allow_range else None
        if self.server_kind == "cdn" and take_fault("norange"):
            rng = None
        if rng and rng[0] >= size:
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % size)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = rng if rng else (0, size - 1)
        n = end - start + 1 if size else 0
        with lock:
            state["ranges"].append([self.server_kind, start, n])
        self.send_response(206 if rng else 200)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD" or n == 0:
            return
        with open(p, "rb") as f:
            f.seek(start)
            body = f.read(n)
        if self.server_kind == "cdn" and take_fault("drop"):
            half = body[: max(1, n // 2)]
            self.wfile.write(half)
            self.wfile.flush()
            self.count(len(half), p)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if self.server_kind == "cdn" and take_fault("truncate"):
            half = body[: max(1, n // 2)]
            self.wfile.write(half)
            self.wfile.flush()
            self.count(len(half), p)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if self.server_kind == "cdn" and take_fault("slow"):
            for i in range(0, n, 2048):
                self.wfile.write(body[i:i + 2048])
                self.wfile.flush()
                self.count(len(body[i:i + 2048]), p)
                time.sleep(0.001)
            return
        self.wfile.write(body)
        self.count(n, p)

    def plain(self, code, text, extra=()):
        b = text.encode()
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b)
            self.count(len(b))


class Hub(Base):
    server_kind = "hub"

    def do_HEAD(self):
        with lock:
            state["head_requests"] += 1
        self.do_GET()

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/__control":
            if "reset" in q:
                reset_state()
            if "fault" in q:
                with lock:
                    state["fault"] = q["fault"][0]
                    state["count"] = int(q.get("count", ["1"])[0])
            if "stop" in q:
                threading.Thread(target=stop_all, daemon=True).start()
            self.plain(200, "ok")
            return
        if u.path == "/__stats":
            with lock:
                text = json.dumps(state)
            self.plain(200, text)
            return
        with lock:
            state["hub_requests"] += 1
            if self.headers.get("Authorization"):
                state["auth_hub"] += 1
            if self.headers.get("Accept-Encoding") == "identity":
                state["identity"] += 1
        parts = [urllib.parse.unquote(x) for x in u.path.split("/")[1:]]
        if take_fault("429"):
            self.plain(429, "slow down", [("Retry-After", "1")])
            return
        if parts[:1] == ["api"] and len(parts) >= 6 and parts[4] == "tree":
            with lock:
                state["tree_requests"] += 1
            repo = parts[2] + "/" + parts[3]
            base = os.path.join(self.server.repos.root, repo)
            if not os.path.isdir(base):
                self.plain(404, "no such repo")
                return
            out = []
            for dp, _, fs in sorted(os.walk(base)):
                for f in sorted(fs):
                    p = os.path.join(dp, f)
                    rel = os.path.relpath(p, base)
                    e = {"type": "file", "path": rel, "size": os.path.getsize(p)}
                    if e["size"] > LFS_MIN:
                        e["lfs"] = {"oid": self.server.repos.sha256(p), "size": e["size"]}
                    out.append(e)
            b = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)
            self.count(len(b))
            return
        if parts[:1] == ["datasets"]:
            parts = parts[1:]
        if len(parts) < 5 or parts[2] != "resolve":
            self.plain(404, "not found")
            return
        repo, rev, rel = parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:])
        with lock:
            state["revs"].append(rev)
        commit = commit_of(repo)
        if rev not in ("main", commit, "refs/pr/1", "refs/convert/parquet", "v1"):
            self.plain(404, "no such revision", [("X-Error-Code", "RevisionNotFound")])
            return
        p = self.server.repos.path(repo, rel)
        if not p:
            self.plain(404, "entry not found", [("X-Error-Code", "EntryNotFound"), ("X-Repo-Commit", commit)])
            return
        size = os.path.getsize(p)
        if size > LFS_MIN:
            sha = self.server.repos.sha256(p)
            linked = hashlib.sha256(b"wrong").hexdigest() if take_fault("badetag") else sha
            loc = "http://127.0.0.1:%d/blob/%s?sig=secret-signature" % (self.server.cdn_port, sha)
            self.send_response(302)
            for k, v in [("Location", loc), ("X-Repo-Commit", commit), ("X-Linked-Etag", '"%s"' % linked),
                         ("X-Linked-Size", str(size)), ("ETag", '"%s"' % linked),
                         ("Accept-Ranges", "bytes"), ("Content-Length", "0")]:
                self.send_header(k, v)
            self.end_headers()
            return
        gitsha = hashlib.sha1(b"blob %d\0" % size + open(p, "rb").read()).hexdigest()
        self.send_file(p, [("X-Repo-Commit", commit), ("ETag", '"%s"' % gitsha)])


class Cdn(Base):
    server_kind = "cdn"

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        with lock:
            state["cdn_requests"] += 1
            if self.headers.get("Authorization"):
                state["auth_cdn"] += 1
        if take_fault("503"):
            self.plain(503, "busy")
            return
        parts = u.path.split("/")
        p = self.server.repos.by_sha(parts[-1]) if len(parts) == 3 and parts[1] == "blob" else None
        if not p:
            self.plain(404, "no such blob")
            return
        self.send_file(p, [("ETag", '"%s"' % parts[-1])])


servers = []


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # faults close sockets under the handler on purpose


def stop_all():
    time.sleep(0.05)
    for s in servers:
        s.shutdown()


def serve(root, portfile, lifetime):
    reset_state()
    repos = Repo(root)
    hub = Server(("127.0.0.1", 0), Hub)
    cdn = Server(("127.0.0.1", 0), Cdn)
    hub.repos = cdn.repos = repos
    hub.cdn_port = cdn.server_address[1]
    servers.extend([hub, cdn])
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    timer = threading.Timer(lifetime, stop_all)
    timer.daemon = True
    timer.start()
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (hub.server_address[1], cdn.server_address[1]))
    os.rename(tmp, portfile)
    hub.serve_forever()
    cdn.shutdown()


def ctl(port, args, path="/__control"):
    q = urllib.parse.urlencode([tuple(a.split("=", 1)) for a in args])
    with urllib.request.urlopen("http://127.0.0.1:%s%s?%s" % (port, path, q), timeout=10) as r:
        return r.read().decode()


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 600)
    elif len(sys.argv) >= 3 and sys.argv[1] == "ctl":
        print(ctl(sys.argv[2], sys.argv[3:]))
    elif len(sys.argv) == 3 and sys.argv[1] == "stats":
        print(ctl(sys.argv[2], [], "/__stats"))
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
