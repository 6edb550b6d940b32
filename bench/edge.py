#!/usr/bin/env python3
"""Requests per second for cached media through a CDN edge and straight from the bucket.

Writes --objects media objects of --size bytes to the media bucket (the lab's media keys, SigV4, as
Mastodon does), warms the edge with each once, then for --duration seconds each has --clients
processes fetch the objects on keep-alive connections in a Zipf-like order: first through the edge
(HTTPS with the media hostname, verified against the lab CA), then anonymously from the bucket
itself. It prints:

    edge req/s, bucket req/s, their ratio, the edge's hit ratio (X-Cache-Status), errors

The load runs on a lab host that may reach both (an application host: the bucket's firewall only
admits the app tier, the edges and monitoring), so both numbers come from the same client. From the
repository, with `make lab` up (or a molecule scenario's lab, with its addresses):

    .venv/bin/python bench/edge.py --client 10.89.40.31 --edge 10.89.40.61
    .venv/bin/python bench/edge.py --client 10.89.48.31 --edge 10.89.48.61 --duration 15 --json /tmp/edge.json

The script copies itself to --client over SSH (the lab key) and runs there with Debian's python3
and curl; nothing is installed.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import random
import socket
import ssl
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- on the client host ----

class _Conn(http.client.HTTPSConnection):
    """Connects to `address` while SNI, Host and certificate checks use the public name."""

    def __init__(self, address, name, port, context):
        super().__init__(name, port, context=context, timeout=30)
        self._address = address

    def connect(self):
        self.sock = self._context.wrap_socket(socket.create_connection((self._address, self.port), self.timeout),
                                              server_hostname=self.host)


def _worker(target, paths, weights, duration, seed, queue):
    address, name, port, prefix, cafile = target
    context = ssl.create_default_context(cafile=cafile)
    rng = random.Random(seed)
    conn, done, hits, errors = None, 0, 0, 0
    end = time.monotonic() + duration
    while time.monotonic() < end:
        path = prefix + rng.choices(paths, weights=weights)[0]
        try:
            if conn is None:
                conn = _Conn(address, name, port, context)
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                done += 1
                hits += response.getheader("X-Cache-Status") == "HIT"
            else:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn = None
    queue.put((done, hits, errors))


def _measure(target, paths, clients, duration):
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(paths))]
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_worker, args=(target, paths, weights, duration, i, queue)) for i in range(clients)]
    started = time.monotonic()
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = time.monotonic() - started
    done = sum(r[0] for r in results)
    return {"requests": done, "rps": done / elapsed, "hits": sum(r[1] for r in results), "errors": sum(r[2] for r in results)}


def on_client(args):
    keys = ["bench/edge/%d/%04d.png" % (args.run, i) for i in range(args.objects)]
    upload = ("f=$(mktemp); head -c %d /dev/urandom > $f; curl -fsS --aws-sigv4 aws:amz:%s:s3 --user \"$S3_KEY:$S3_SECRET\" "
              "-H 'x-amz-acl: public-read' -H 'Content-Type: image/png' -T $f %s/%s/{}; rm -f $f") % (
                  args.size, args.region, args.bucket_url, args.bucket)
    subprocess.run(["xargs", "-P", "8", "-I", "{}", "bash", "-c", upload], input="\n".join(keys), text=True, check=True)
    paths = ["/" + key for key in keys]
    edge = (args.edge, args.media_host, 443, "", args.cafile)
    bucket_host, bucket_port = args.bucket_url.split("://", 1)[1].split(":")
    bucket = (socket.gethostbyname(bucket_host), bucket_host, int(bucket_port), "/" + args.bucket, args.cafile)
    _measure(edge, paths, 1, 0)  # opens nothing; keeps the first measurement free of fork warm-up
    warm = ssl.create_default_context(cafile=args.cafile)
    conn = _Conn(args.edge, args.media_host, 443, warm)
    for path in paths:
        conn.request("GET", path)
        conn.getresponse().read()
    through_edge = _measure(edge, paths, args.clients, args.duration)
    from_bucket = _measure(bucket, paths, args.clients, args.duration)
    print(json.dumps({"edge": through_edge, "bucket": from_bucket}))


# ---- on the controller ----

def _lab_values():
    import yaml  # the controller's venv has it; the client host does not need it

    values = {}
    for name in ("s3.yml", "secrets.yml", "mastodon.yml"):
        with open(os.path.join(REPO, "inventories", "lab", "group_vars", "all", name)) as handle:
            values.update(yaml.safe_load(handle))
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--client", help="address of the lab host that runs the load (an app host)")
    parser.add_argument("--edge", required=True, help="address of the edge")
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--size", type=int, default=32 * 1024, help="bytes per object")
    parser.add_argument("--clients", type=int, default=4, help="load processes")
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--on-client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--media-host", help=argparse.SUPPRESS)
    parser.add_argument("--bucket-url", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--region", help=argparse.SUPPRESS)
    parser.add_argument("--cafile", default="/etc/ssl/certs/ca-certificates.crt", help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=int(time.time()), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.on_client:
        return on_client(args)
    if not args.client:
        parser.error("--client is required")

    lab = _lab_values()
    home = os.environ.get("FEDIOPS_LAB_HOME", os.path.expanduser("~/.fediops-lab"))
    remote = ["python3", "-", "--on-client", "--edge", args.edge, "--objects", str(args.objects), "--size", str(args.size),
              "--clients", str(args.clients), "--duration", str(args.duration), "--run", str(args.run),
              "--media-host", lab["mastodon_config_s3_alias_host"], "--bucket", lab["fediops_s3_media_bucket"],
              "--bucket-url", "https://%s:%s" % (lab["fediops_s3_endpoint_host"], lab["fediops_s3_endpoint_port"]),
              "--region", lab["fediops_s3_region"]]
    env_prefix = "S3_KEY=%s S3_SECRET=%s " % (lab["fediops_s3_media_access_key"], lab["fediops_s3_media_secret_key"])
    with open(os.path.abspath(__file__)) as source:
        out = subprocess.run(
            ["ssh", "-i", os.path.join(home, "ssh", "id_ed25519"), "-o", "StrictHostKeyChecking=no", "-o",
             "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@" + args.client, env_prefix + " ".join(remote)],
            stdin=source, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit("bench failed on %s: %s" % (args.client, out.stderr.strip()))
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    edge, bucket = figures["edge"], figures["bucket"]
    figures["ratio"] = edge["rps"] / bucket["rps"] if bucket["rps"] else None
    figures["hit_ratio"] = edge["hits"] / float(edge["requests"]) if edge["requests"] else 0.0
    figures["settings"] = {"objects": args.objects, "size": args.size, "clients": args.clients, "duration": args.duration}
    print("cached media, %d objects of %d bytes, %d clients, %.0f s each, Zipf s=1.1" % (
        args.objects, args.size, args.clients, args.duration))
    print("  through the edge   %8.1f req/s  (%d requests, %d errors)" % (edge["rps"], edge["requests"], edge["errors"]))
    print("  from the bucket    %8.1f req/s  (%d requests, %d errors)" % (bucket["rps"], bucket["requests"], bucket["errors"]))
    print("  edge / bucket      %8.2f x" % figures["ratio"])
    print("  edge hit ratio     %8.4f" % figures["hit_ratio"])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
