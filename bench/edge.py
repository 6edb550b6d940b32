#!/usr/bin/env python3
"""Cached media through a CDN edge: req/s, the hit ratio of a cold Zipf workload, and every error by kind.

Writes --objects media objects of --size bytes to the media bucket (the lab's media keys, SigV4, as
Mastodon does) under a fresh prefix, so every edge starts cold for them: nothing is pre-warmed. Then,
for --duration seconds per target, --clients processes each fetch objects on keep-alive connections,
the object of every request drawn from a Zipf distribution (P(rank k) ~ 1/k^s, --zipf-s, seeded by
--seed): first through each --edge in turn (HTTPS with the media hostname, verified against the lab
CA), then anonymously from the bucket itself. Each request has exactly one outcome: an answer of
status 200 whose body is the object written (counted under the edge's X-Cache-Status), or an error
counted under its kind (connection refused, connection reset, timeout, HTTP 5xx, wrong body, ...).
No request is retried. It prints a table:

    target, req/s, requests, errors, hit ratio overall and after the --warmup seconds, and the ideal
    hit ratio of the same draws through a cache that never evicts (one fetch per object)

then the cache statuses and the errors by kind, and exits 1 if there was any error.

The load runs on a lab host that may reach both (an application host: the bucket's firewall only
admits the app tier, the edges and monitoring), so both numbers come from the same client. From the
repository, with `make lab` up (or a molecule scenario's lab, with its addresses: fleet is 10.89.50):

    .venv/bin/python bench/edge.py --client 10.89.40.31 --edge 10.89.40.61
    .venv/bin/python bench/edge.py --client 10.89.50.31 --edge 10.89.50.61 --edge 10.89.50.62 --json /tmp/edge.json

The script copies itself to --client over SSH (the lab key) and runs there with Debian's python3
and curl; nothing is installed. Its pure parts (the Zipf sampler, the error kinds, the tally and the
ideal hit ratio) are unit-tested in tests/unit/bench/test_edge_bench.py, and the fleet scenario's edge
tests name errors with error_kind.
"""
import argparse
import bisect
import hashlib
import http.client
import itertools
import json
import multiprocessing
import os
import random
import socket
import ssl
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ZIPF_S = 1.1  # media popularity on a busy instance is heavy-headed; 1.0-1.2 is the usual range


# ---- pure parts ----

class Zipf:
    """Ranks 0..n-1 drawn with P(rank k) proportional to 1 / (k + 1) ** s, from a seeded generator."""

    def __init__(self, n, s, seed):
        if n < 1:
            raise ValueError("Zipf needs at least one object, got n=%r" % (n,))
        if not s > 0:
            raise ValueError("Zipf exponent s must be > 0, got %r" % (s,))
        weights = [1.0 / (k + 1) ** s for k in range(n)]
        total = sum(weights)
        self.probabilities = [w / total for w in weights]
        self._cumulative = list(itertools.accumulate(self.probabilities))
        self._cumulative[-1] = 1.0
        self._rng = random.Random(seed)

    def sample(self):
        return min(bisect.bisect_right(self._cumulative, self._rng.random()), len(self._cumulative) - 1)


def ideal_hit_ratio(probabilities, requests, before=0):
    """Expected hit ratio of `requests` independent draws that follow `before` earlier ones, through a cache
    that never evicts and fetches each object once: the first draw of an object misses, every later one hits."""
    if requests <= 0:
        return 0.0
    first_seen = sum((1 - p) ** before - (1 - p) ** (before + requests) for p in probabilities)
    return 1.0 - first_seen / requests


def error_kind(exc):
    """The name a failed request is counted under. Order matters: RemoteDisconnected is a ConnectionResetError,
    ssl.SSLError and socket.timeout are OSErrors."""
    if isinstance(exc, http.client.RemoteDisconnected):
        return "closed without an answer"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, BrokenPipeError):
        return "broken pipe"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return "TLS error (%s)" % (getattr(exc, "reason", None) or type(exc).__name__)
    if isinstance(exc, http.client.IncompleteRead):
        return "incomplete body"
    if isinstance(exc, http.client.HTTPException):
        return "HTTP protocol error (%s)" % type(exc).__name__
    if isinstance(exc, OSError):
        return "network error (%s)" % (os.strerror(exc.errno) if exc.errno else type(exc).__name__)
    return "unexpected %s" % type(exc).__name__


def answer_kind(status, body_ok):
    """None for a right answer (200 and the expected body), else the name it is counted under."""
    if status != 200:
        return "HTTP %d" % status
    if not body_ok:
        return "wrong body"
    return None


class Tally:
    """Every request of a run counted once: as an answer (by cache status) or as an error (by kind)."""

    def __init__(self, answers=None, errors=None):
        self.answers = dict(answers or {})  # X-Cache-Status (or "-" when absent) -> count
        self.errors = dict(errors or {})    # error kind -> count

    def answer(self, cache_status):
        key = cache_status or "-"
        self.answers[key] = self.answers.get(key, 0) + 1

    def error(self, kind):
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def requests(self):
        return sum(self.answers.values()) + self.error_count

    @property
    def error_count(self):
        return sum(self.errors.values())

    def hit_ratio(self):
        """HIT answers over all requests (a failed request is not a hit)."""
        return self.answers.get("HIT", 0) / float(self.requests) if self.requests else 0.0

    def merge(self, other):
        for name in ("answers", "errors"):
            mine = getattr(self, name)
            for key, count in getattr(other, name).items():
                mine[key] = mine.get(key, 0) + count
        return self

    def to_dict(self):
        return {"answers": dict(sorted(self.answers.items())), "errors": dict(sorted(self.errors.items()))}

    @classmethod
    def from_dict(cls, data):
        return cls(data["answers"], data["errors"])


def object_content(key, size):
    """The bytes written for `key`: deterministic, so every answer's body can be checked."""
    block = hashlib.sha256(key.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def describe(counts):
    return ", ".join("%s %d" % (key, count) for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


# ---- on the client host ----

class _Conn(http.client.HTTPSConnection):
    """Connects to `address` while SNI, Host and certificate checks use the public name.

    http.client sends each request once and never retries: after an error the connection is dropped and the
    next request (a new draw, a new outcome) opens a new one."""

    def __init__(self, address, name, port, context):
        super().__init__(name, port, context=context, timeout=30)
        self._address = address

    def connect(self):
        self.sock = self._context.wrap_socket(socket.create_connection((self._address, self.port), self.timeout),
                                              server_hostname=self.host)


def _worker(target, paths, digests, s, seed, started, duration, warmup, queue):
    address, name, port, prefix, cafile = target
    context = ssl.create_default_context(cafile=cafile)
    zipf = Zipf(len(paths), s, seed)
    warm, measured = Tally(), Tally()
    conn = None
    end, warm_end = started + duration, started + warmup
    time.sleep(max(0.0, started - time.monotonic()))
    while True:
        now = time.monotonic()
        if now >= end:
            break
        tally = warm if now < warm_end else measured
        path = paths[zipf.sample()]
        try:
            if conn is None:
                conn = _Conn(address, name, port, context)
            conn.request("GET", prefix + path)
            response = conn.getresponse()
            body = response.read()
        except Exception as exc:  # noqa: BLE001 - every kind is counted, by name
            tally.error(error_kind(exc))
            if conn is not None:
                conn.close()
            conn = None
            continue
        kind = answer_kind(response.status, hashlib.sha256(body).digest() == digests[path])
        if kind:
            tally.error(kind)
        else:
            tally.answer(response.getheader("X-Cache-Status"))
    if conn is not None:
        conn.close()
    queue.put((warm.to_dict(), measured.to_dict()))


def _measure(target, paths, digests, args, seed_base):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    started = time.monotonic() + 0.5  # every process starts drawing at the same moment
    procs = [ctx.Process(target=_worker, args=(target, paths, digests, args.zipf_s, seed_base + i, started,
                                               args.duration, args.warmup, queue)) for i in range(args.clients)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=args.duration + 300) for _ in procs]
    for proc in procs:
        proc.join()
    warm, measured = Tally(), Tally()
    for w, m in results:
        warm.merge(Tally.from_dict(w))
        measured.merge(Tally.from_dict(m))
    overall = Tally().merge(warm).merge(measured)
    return {"overall": overall.to_dict(), "warmup": warm.to_dict(), "after_warmup": measured.to_dict(),
            "requests": overall.requests, "rps": overall.requests / args.duration}


def on_client(args):
    keys = ["bench/edge/%d/%05d.png" % (args.run, i) for i in range(args.objects)]
    with tempfile.TemporaryDirectory() as tmp:
        for key in keys:
            with open(os.path.join(tmp, os.path.basename(key)), "wb") as handle:
                handle.write(object_content(key, args.size))
        upload = ("curl -fsS --aws-sigv4 aws:amz:%s:s3 --user \"$S3_KEY:$S3_SECRET\" -H 'x-amz-acl: public-read' "
                  "-H 'Content-Type: image/png' -T %s/$(basename {}) %s/%s/{}") % (
                      args.region, tmp, args.bucket_url, args.bucket)
        subprocess.run(["xargs", "-P", "8", "-I", "{}", "bash", "-c", upload], input="\n".join(keys), text=True, check=True)
    paths = ["/" + key for key in keys]
    digests = {path: hashlib.sha256(object_content(key, args.size)).digest() for path, key in zip(paths, keys)}
    bucket_host, bucket_port = args.bucket_url.split("://", 1)[1].split(":")
    bucket = (socket.gethostbyname(bucket_host), bucket_host, int(bucket_port), "/" + args.bucket, args.cafile)
    figures = {"edges": {}}
    for n, edge in enumerate(args.edge):
        figures["edges"][edge] = _measure((edge, args.media_host, 443, "", args.cafile), paths, digests, args,
                                          args.seed * 1000 + 100 * n)
    figures["bucket"] = _measure(bucket, paths, digests, args, args.seed * 1000 + 900)
    print(json.dumps(figures))


# ---- on the controller ----

def _lab_values():
    import yaml  # the controller's venv has it; the client host does not need it

    values = {}
    for name in ("s3.yml", "secrets.yml", "mastodon.yml"):
        with open(os.path.join(REPO, "inventories", "lab", "group_vars", "all", name)) as handle:
            values.update(yaml.safe_load(handle))
    return values


def report(figures, args):
    """The table and the lines under it; returns (text, number of errors)."""
    probabilities = Zipf(args.objects, args.zipf_s, 0).probabilities
    lines = ["cached media: %d objects of %d bytes written cold (no pre-warming), Zipf s=%g, seed %d, "
             "%d clients, %g s per target, warm-up %g s" % (args.objects, args.size, args.zipf_s, args.seed,
                                                            args.clients, args.duration, args.warmup),
             "  %-22s %9s %9s %7s %10s %14s %8s %14s" % ("target", "req/s", "requests", "errors", "hit ratio",
                                                       "after warm-up", "ideal", "ideal after")]
    errors = 0
    rows = [("edge " + edge, run) for edge, run in figures["edges"].items()] + [("bucket", figures["bucket"])]
    for label, run in rows:
        overall, warm, after = (Tally.from_dict(run[k]) for k in ("overall", "warmup", "after_warmup"))
        errors += overall.error_count
        if label.startswith("edge"):
            hit = "%10.4f %14.4f %8.4f %14.4f" % (
                overall.hit_ratio(), after.hit_ratio(), ideal_hit_ratio(probabilities, overall.requests),
                ideal_hit_ratio(probabilities, after.requests, before=warm.requests))
        else:
            hit = "%10s %14s %8s %14s" % ("-", "-", "-", "-")
        lines.append("  %-22s %9.1f %9d %7d %s" % (label, run["rps"], overall.requests, overall.error_count, hit))
    bucket_rps = figures["bucket"]["rps"]
    for edge, run in figures["edges"].items():
        lines.append("  edge %s / bucket: %s" % (edge, "%.2f x" % (run["rps"] / bucket_rps) if bucket_rps else "-"))
    for label, run in rows:
        overall = Tally.from_dict(run["overall"])
        if label.startswith("edge"):
            lines.append("  %s cache statuses: %s" % (label, describe(overall.answers)))
        lines.append("  %s errors by kind: %s" % (label, describe(overall.errors)))
    return "\n".join(lines), errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--client", help="address of the lab host that runs the load (an app host)")
    parser.add_argument("--edge", required=True, action="append", help="address of an edge (repeat for several)")
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--size", type=int, default=32 * 1024, help="bytes per object")
    parser.add_argument("--zipf-s", type=float, default=DEFAULT_ZIPF_S, help="Zipf exponent")
    parser.add_argument("--seed", type=int, default=1, help="seeds every client's draws")
    parser.add_argument("--clients", type=int, default=4, help="load processes")
    parser.add_argument("--duration", type=float, default=10, help="seconds per target")
    parser.add_argument("--warmup", type=float, default=2, help="first seconds of each run reported apart")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--on-client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--media-host", help=argparse.SUPPRESS)
    parser.add_argument("--bucket-url", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--region", help=argparse.SUPPRESS)
    parser.add_argument("--cafile", default="/etc/ssl/certs/ca-certificates.crt", help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=int(time.time()), help=argparse.SUPPRESS)
    args = parser.parse_args()
    Zipf(args.objects, args.zipf_s, args.seed)  # refuses a bad --objects or --zipf-s before anything is written
    if not 0 <= args.warmup < args.duration:
        parser.error("--warmup must be at least 0 and less than --duration")
    if args.on_client:
        return on_client(args)
    if not args.client:
        parser.error("--client is required")

    lab = _lab_values()
    home = os.environ.get("FEDIOPS_LAB_HOME", os.path.expanduser("~/.fediops-lab"))
    remote = ["python3", "-", "--on-client", "--objects", str(args.objects), "--size", str(args.size),
              "--zipf-s", repr(args.zipf_s), "--seed", str(args.seed), "--clients", str(args.clients),
              "--duration", str(args.duration), "--warmup", str(args.warmup), "--run", str(args.run),
              "--media-host", lab["mastodon_config_s3_alias_host"], "--bucket", lab["fediops_s3_media_bucket"],
              "--bucket-url", "https://%s:%s" % (lab["fediops_s3_endpoint_host"], lab["fediops_s3_endpoint_port"]),
              "--region", lab["fediops_s3_region"]]
    for edge in args.edge:
        remote += ["--edge", edge]
    env_prefix = "S3_KEY=%s S3_SECRET=%s " % (lab["fediops_s3_media_access_key"], lab["fediops_s3_media_secret_key"])
    with open(os.path.abspath(__file__)) as source:
        out = subprocess.run(
            ["ssh", "-i", os.path.join(home, "ssh", "id_ed25519"), "-o", "StrictHostKeyChecking=no", "-o",
             "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@" + args.client, env_prefix + " ".join(remote)],
            stdin=source, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit("bench failed on %s: %s" % (args.client, out.stderr.strip()))
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    text, errors = report(figures, args)
    print(text)
    figures["settings"] = {"objects": args.objects, "size": args.size, "zipf_s": args.zipf_s, "seed": args.seed,
                           "clients": args.clients, "duration": args.duration, "warmup": args.warmup}
    figures["errors"] = errors
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    if errors:
        print("FAILED: %d request(s) did not get the object" % errors)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
