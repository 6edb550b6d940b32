"""The CDN edges, read back through nginx from the controller (a visitor) and from the lab hosts.

Objects are written to the bucket from web1 the way Mastodon writes them (the media keys, SigV4);
reads go through edge-eu unless a test says otherwise. Origin fetches are counted from the edge's
media access log, whose upstream= field is "-" for every answer the cache gave.
"""
import json
import os
import random
import shlex
import subprocess
import threading
import time

import pytest
import yaml

from edge_client import MEDIA_HOST, WEB_HOST, Client, EdgeConnection, error_kind, lab_ca_context, parallel

REPO = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))
MEDIA_LOG = "/var/log/nginx/fediops-media.access.log"
WEB_LOG = "/var/log/nginx/fediops-web.access.log"
PREFIX = "media_attachments/files/%d" % int(time.time())


def _lab_vars():
    values = {}
    for name in ("s3.yml", "secrets.yml", "mastodon.yml"):
        with open(os.path.join(REPO, "inventories", "lab", "group_vars", "all", name)) as handle:
            values.update(yaml.safe_load(handle))
    return values


LAB = _lab_vars()
BUCKET_URL = "https://%s:%s/%s" % (LAB["fediops_s3_endpoint_host"], LAB["fediops_s3_endpoint_port"],
                                   LAB["fediops_s3_media_bucket"])
SECRET = LAB["fediops_cache_buster_secret"]
SECRET_HEADER = LAB["fediops_cache_buster_header"]


def put_objects(host, objects):
    """PUT {key: size_or_text} into the media bucket from `host`, 8 at a time."""
    commands = []
    for key, content in objects.items():
        source = ("head -c %d /dev/urandom" % content) if isinstance(content, int) else ("printf %%s %s" % shlex.quote(content))
        commands.append("(f=$(mktemp) && %s > $f && curl -fsS --aws-sigv4 aws:amz:%s:s3 --user %s:%s -H 'x-amz-acl: public-read' "
                        "-H 'Content-Type: image/png' -T $f %s/%s && rm -f $f || echo FAILED %s)" % (
                            source, LAB["fediops_s3_region"], LAB["fediops_s3_media_access_key"],
                            LAB["fediops_s3_media_secret_key"], BUCKET_URL, key, key))
    script = "\n".join(" & ".join(commands[i:i + 8]) + " & wait" for i in range(0, len(commands), 8))
    result = host.run("bash -c %s", script)
    assert result.rc == 0 and "FAILED" not in result.stdout, result.stdout + result.stderr


def put_one(host, key, content):
    put_objects(host, {key: content})


def delete_object(host, key):
    result = host.run("curl -fsS -X DELETE --aws-sigv4 aws:amz:%s:s3 --user %s:%s %s/%s" % (
        LAB["fediops_s3_region"], LAB["fediops_s3_media_access_key"], LAB["fediops_s3_media_secret_key"], BUCKET_URL, key))
    assert result.rc == 0, result.stderr


def log_lines(edge, path, after):
    return edge.check_output("tail -n +%s %s", str(after + 1), path).splitlines()


def log_length(edge, path):
    return int(edge.check_output("wc -l < %s", path).strip() or 0)


@pytest.fixture(scope="module")
def edge_eu(lab_addresses):
    return lab_addresses["edge-eu"]


@pytest.fixture(scope="module")
def zipf_objects(lab_host):
    keys = ["%s/zipf/%03d.png" % (PREFIX, i) for i in range(200)]
    put_objects(lab_host("web1"), {key: 2048 + 16 * i for i, key in enumerate(keys)})
    return keys


# ---- TLS and per-region identity ----

@pytest.mark.parametrize("edge", ["edge-eu", "edge-us"])
@pytest.mark.parametrize("name", [MEDIA_HOST, WEB_HOST])
def test_certificate_verifies_against_the_lab_ca(lab_addresses, edge, name):
    conn = EdgeConnection(lab_addresses[edge], name)
    conn.connect()
    names = [value for kind, value in conn.sock.getpeercert()["subjectAltName"] if kind == "DNS"]
    conn.close()
    assert name in names


def test_a_name_the_edge_does_not_serve_gets_no_certificate(edge_eu):
    conn = EdgeConnection(edge_eu, "other.example", context=lab_ca_context())
    with pytest.raises(OSError):
        conn.connect()


@pytest.mark.parametrize("edge,region", [("edge-eu", "eu"), ("edge-us", "us")])
def test_region_is_in_the_response(lab_addresses, edge, region):
    status, headers, _ = Client(lab_addresses[edge], WEB_HOST).get("/health")
    assert status == 200
    assert headers["x-edge-region"] == region


@pytest.mark.parametrize("edge", ["edge-eu", "edge-us"])
def test_certificate_expiry_is_exported(lab_host, edge):
    metrics = lab_host(edge).file("/var/lib/prometheus/node-exporter/fediops_edge_tls.prom").content_string
    line = [x for x in metrics.splitlines() if x.startswith("fediops_tls_cert_not_after_seconds{")][0]
    assert float(line.split()[-1]) > time.time() + 30 * 86400


# ---- media ----

def test_media_headers_follow_the_object_storage_proxy_guide(lab_host, edge_eu):
    key = "%s/headers/a.png" % PREFIX
    put_one(lab_host("web1"), key, "headers\n")
    status, headers, body = Client(edge_eu, MEDIA_HOST).get("/" + key, headers={"Cookie": "a=b", "Authorization": "x"})
    assert status == 200 and body == b"headers\n"
    assert headers["access-control-allow-origin"] == "*"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; form-action 'none'"
    assert "public" in headers["cache-control"] and "max-age=31536000" in headers["cache-control"]
    assert headers["x-cache-status"] in ("MISS", "HIT")
    assert not [h for h in headers if h.startswith("x-amz-") or h == "set-cookie"], headers


def test_only_get_and_head_are_answered(lab_host, edge_eu):
    client = Client(edge_eu, MEDIA_HOST)
    assert client.get("/%s/headers/a.png" % PREFIX, method="HEAD")[0] == 200
    for method in ("POST", "PUT", "DELETE"):
        assert client.get("/%s/headers/a.png" % PREFIX, method=method)[0] == 405


def test_answers_are_counted_by_server_and_status_class(lab_host, edge_eu):
    """fediops_edge_responses_total (what the EdgeHighErrorRate alert reads) counts the access logs."""
    host = lab_host("edge-eu")

    def counts():
        assert host.run("systemctl start fediops-edge-responses.service").rc == 0
        text = host.file("/var/lib/prometheus/node-exporter/fediops_edge_responses.prom").content_string
        return {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if not line.startswith("#")}

    before = counts()
    web = Client(edge_eu, WEB_HOST)
    media = Client(edge_eu, MEDIA_HOST)
    for _ in range(3):
        assert web.get("/health")[0] == 200
    for _ in range(2):
        assert media.get("/%s/headers/a.png" % PREFIX, method="POST")[0] == 405
    after = counts()
    web_2xx = 'fediops_edge_responses_total{server="web",code_class="2xx"}'
    media_4xx = 'fediops_edge_responses_total{server="media",code_class="4xx"}'
    assert after[web_2xx] - before[web_2xx] >= 3
    assert after[media_4xx] - before[media_4xx] >= 2
    assert set(after) >= {'fediops_edge_responses_total{server="%s",code_class="%dxx"}' % (s, c)
                          for s in ("web", "media") for c in range(1, 6)}


def test_zipf_workload_hit_ratio_is_at_least_95_percent(edge_eu, zipf_objects):
    rng = random.Random(7)
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(zipf_objects))]
    stream = rng.choices(zipf_objects, weights=weights, k=4000)
    warmup, measured = stream[:1000], stream[1000:]

    def run(requests):
        counts = {}
        lock = threading.Lock()
        chunks = [requests[i::8] for i in range(8)]

        def worker(i):
            client = Client(edge_eu, MEDIA_HOST)
            for key in chunks[i]:
                status, headers, _ = client.get("/" + key)
                assert status == 200
                with lock:
                    counts[headers.get("x-cache-status")] = counts.get(headers.get("x-cache-status"), 0) + 1
            client.close()

        for result in parallel(8, worker):
            if isinstance(result, Exception):
                raise result
        return counts

    run(warmup)
    counts = run(measured)
    ratio = counts.get("HIT", 0) / float(len(measured))
    print("zipf: %d requests over %d objects, statuses %s, hit ratio %.4f" % (len(measured), len(zipf_objects), counts, ratio))
    assert ratio >= 0.95, counts


def test_fifty_concurrent_cold_requests_make_one_bucket_fetch(lab_host, edge_eu):
    key = "%s/cold/burst.png" % PREFIX
    put_one(lab_host("web1"), key, 4 * 1024 * 1024)
    edge = lab_host("edge-eu")
    before = log_length(edge, MEDIA_LOG)
    results = parallel(50, lambda i: Client(edge_eu, MEDIA_HOST).get("/" + key))
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, ["%s: %s" % (error_kind(e), e) for e in errors]
    assert {r[0] for r in results} == {200}
    assert len({r[2] for r in results}) == 1 and len(results[0][2]) == 4 * 1024 * 1024
    time.sleep(1)  # the access log is written when each response ends
    lines = [x for x in log_lines(edge, MEDIA_LOG, before) if " /%s " % key in x]
    fetches = [x for x in lines if "upstream=-" not in x]
    print("cold burst: %d requests logged, %d fetched from the bucket: %s" % (len(lines), len(fetches), fetches))
    assert len(lines) == 50
    assert len(fetches) == 1


def test_purge_with_the_secret_evicts_and_without_it_is_refused(lab_host, edge_eu):
    key = "%s/purge/p.png" % PREFIX
    web1 = lab_host("web1")
    client = Client(edge_eu, MEDIA_HOST)
    put_one(web1, key, "version 1\n")
    assert client.get("/" + key)[2] == b"version 1\n"
    status, headers, body = client.get("/" + key)
    assert (status, headers["x-cache-status"], body) == (200, "HIT", b"version 1\n")

    put_one(web1, key, "version 2\n")
    # A visitor's request is answered from the cache: nothing evicted.
    status, headers, body = client.get("/" + key)
    assert (status, headers["x-cache-status"], body) == (200, "HIT", b"version 1\n")
    # The header with a wrong secret is refused and evicts nothing.
    status, _, _ = client.get("/" + key, headers={SECRET_HEADER: "not-the-secret"})
    assert status == 403
    assert client.get("/" + key)[2] == b"version 1\n"

    # Mastodon's cache buster: GET with the secret header re-fetches and overwrites the entry.
    status, headers, body = client.get("/" + key, headers={SECRET_HEADER: SECRET})
    assert (status, headers["x-cache-status"], body) == (200, "BYPASS", b"version 2\n")
    status, headers, body = client.get("/" + key)
    assert (status, headers["x-cache-status"], body) == (200, "HIT", b"version 2\n")

    # A deleted object: the purge replaces the cached copy with the bucket's answer.
    delete_object(web1, key)
    assert client.get("/" + key)[0] == 200
    assert client.get("/" + key, headers={SECRET_HEADER: SECRET})[0] in (403, 404)
    assert client.get("/" + key)[0] in (403, 404)


# ---- web ----

def _load(address, path, stop, results, lock):
    """Requests `path` until `stop`; records one outcome per request: (time, error kind or None, host, detail).
    A failed request is recorded under its kind and never repeated (edge_client.Client does not retry)."""
    client = Client(address, WEB_HOST)
    while not stop.is_set():
        try:
            status, headers, body = client.get(path)
        except Exception as exc:  # noqa: BLE001 - every kind is counted, by name
            entry = (time.time(), error_kind(exc), "", "%s: %s" % (type(exc).__name__, exc))
        else:
            host = headers.get("x-fixture-host", "").split(":")[0]
            if status != 200:
                kind = "HTTP %d" % status
            elif body != b"OK":
                kind = "wrong body"
            elif not host:
                kind = "answer without x-fixture-host"
            else:
                kind = None
            entry = (time.time(), kind, host, "" if kind is None else "%d %r" % (status, body[:200]))
        with lock:
            results.append(entry)
    client.close()


def test_one_puma_stopped_requests_keep_succeeding_and_it_gets_traffic_back(lab_host, edge_eu):
    """0 failed requests while web1's Puma is stopped and started again. The edge's proxy_next_upstream
    (error timeout http_502 http_503) moving a request from the stopped host to web2 is the server-side retry
    under test; the client sends every request once."""
    web1 = lab_host("web1")
    stop, lock, results = threading.Event(), threading.Lock(), []
    threads = [threading.Thread(target=_load, args=(edge_eu, "/health", stop, results, lock)) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        web1.check_output("systemctl stop mastodon-web.service")
        stopped_at = time.time()
        time.sleep(8)
        web1.check_output("systemctl start mastodon-web.service")
        started_at = time.time()
        deadline = started_at + 45
        back = False
        while time.time() < deadline and not back:
            time.sleep(1)
            with lock:
                back = any(t > started_at and h == "web1" and k is None for t, k, h, _ in results)
        time.sleep(2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    errors = [r for r in results if r[1] is not None]
    kinds = {}
    for _, kind, _, _ in errors:
        kinds[kind] = kinds.get(kind, 0) + 1
    during = [r for r in results if stopped_at < r[0] < started_at]
    print("web failover: %d requests, %d failed (%s), %d while web1 was stopped (hosts %s), web1 back: %s" % (
        len(results), len(errors), ", ".join("%s %d" % kv for kv in sorted(kinds.items())) or "none", len(during),
        sorted({h for _, _, h, _ in during}), back))
    assert len(results) > 200
    assert not errors, "%d of %d requests failed: %s; first ones (s after the stop, kind, detail): %s" % (
        len(errors), len(results), ", ".join("%s %d" % kv for kv in sorted(kinds.items())),
        [("%+.2f" % (t - stopped_at), k, d) for t, k, _, d in errors[:5]])
    # A request web1 was already answering may finish just after the stop began.
    assert {h for t, _, h, _ in during if t > stopped_at + 1} == {"web2"}
    assert back, "web1 got no request through the edge within 45 s of restarting"


def test_streaming_is_proxied(edge_eu):
    status, headers, body = Client(edge_eu, WEB_HOST).get("/api/v1/streaming/health")
    assert status == 200, body


# ---- the drain interface (include_role tasks_from=upstreams) ----

def _drain(drained):
    playbook = os.path.join(os.path.dirname(os.path.abspath(__file__)), "drain.yml")
    scenario = os.environ.get("MOLECULE_SCENARIO_DIRECTORY", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        ["ansible-playbook", playbook, "-i", os.path.join(REPO, "inventories", "lab"),
         "-i", os.path.join(scenario, "inventory.yml"), "--limit", "edge-eu",
         "-e", json.dumps({"cdn_edge_web_drained": drained})],
        cwd=REPO, capture_output=True, text=True, check=False,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    recap = [x for x in result.stdout.splitlines() if x.startswith("edge-eu") and "changed=" in x][-1]
    return int(recap.split("changed=")[1].split()[0])


def test_drain_takes_the_host_out_before_returning_and_lets_in_flight_requests_finish(edge_eu):
    slow = []

    def slow_request(i):
        return Client(edge_eu, WEB_HOST).get("/fixture/sleep?s=6")

    holder = threading.Thread(target=lambda: slow.extend(parallel(4, slow_request)))
    holder.start()
    time.sleep(1.5)
    try:
        assert _drain(["web2"]) >= 1
        client = Client(edge_eu, WEB_HOST)
        hosts = [client.get("/health")[1].get("x-fixture-host", "").split(":")[0] for _ in range(40)]
        assert set(hosts) == {"web1"}, hosts
        assert _drain(["web2"]) == 0
    finally:
        holder.join()
        undrain_changed = _drain([])
    assert [r[0] for r in slow] == [200] * 4, slow
    assert "web2" in {r[1].get("x-fixture-host", "").split(":")[0] for r in slow}, "no in-flight request was on web2"
    assert undrain_changed >= 1
    client = Client(edge_eu, WEB_HOST)
    hosts = {client.get("/health")[1].get("x-fixture-host", "").split(":")[0] for _ in range(20)}
    assert hosts == {"web1", "web2"}
