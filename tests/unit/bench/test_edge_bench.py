"""bench/edge.py's pure parts, without servers: the Zipf sampler, the ideal hit ratio, error kinds, the tally,
and the report's exit decision."""
import argparse
import http.client
import importlib.util
import os
import socket
import ssl

import pytest

PATH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench", "edge.py")


@pytest.fixture(scope="module")
def edge():
    spec = importlib.util.spec_from_file_location("fediops_bench_edge", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- Zipf ----

def test_zipf_probabilities_follow_the_power_law(edge):
    zipf = edge.Zipf(100, 1.1, seed=1)
    p = zipf.probabilities
    assert abs(sum(p) - 1) < 1e-12
    assert p[0] / p[1] == pytest.approx(2 ** 1.1)
    assert p[0] / p[9] == pytest.approx(10 ** 1.1)
    assert all(a > b for a, b in zip(p, p[1:]))


def test_zipf_draws_match_the_probabilities_and_cover_the_tail(edge):
    zipf = edge.Zipf(50, 1.0, seed=3)
    draws = 200000
    counts = [0] * 50
    for _draw in range(draws):
        counts[zipf.sample()] += 1
    for rank in (0, 1, 4, 49):
        expected = zipf.probabilities[rank] * draws
        assert abs(counts[rank] - expected) < 5 * expected ** 0.5 + 5, (rank, counts[rank], expected)
    assert all(counts), "every rank is drawn, the last one too"


def test_zipf_is_reproducible_from_its_seed(edge):
    a, b, c = edge.Zipf(1000, 1.2, 7), edge.Zipf(1000, 1.2, 7), edge.Zipf(1000, 1.2, 8)
    first = [a.sample() for _draw in range(500)]
    assert first == [b.sample() for _draw in range(500)]
    assert first != [c.sample() for _draw in range(500)]
    assert all(0 <= r < 1000 for r in first)


def test_one_object_is_always_drawn(edge):
    one = edge.Zipf(1, 1.1, 0)
    assert {one.sample() for _draw in range(20)} == {0}


@pytest.mark.parametrize("n,s", [(0, 1.1), (10, 0), (10, -1.0)])
def test_zipf_refuses_bad_parameters(edge, n, s):
    with pytest.raises(ValueError, match="Zipf"):
        edge.Zipf(n, s, 1)


# ---- the ideal hit ratio ----

def test_ideal_hit_ratio_of_one_object_misses_once(edge):
    assert edge.ideal_hit_ratio([1.0], 10) == pytest.approx(0.9)
    assert edge.ideal_hit_ratio([1.0], 10, before=5) == pytest.approx(1.0)
    assert edge.ideal_hit_ratio([1.0], 0) == 0.0


def test_ideal_hit_ratio_of_uniform_objects_counts_expected_distinct(edge):
    n, r = 100, 100
    distinct = n * (1 - (1 - 1.0 / n) ** r)
    assert edge.ideal_hit_ratio([1.0 / n] * n, r) == pytest.approx(1 - distinct / r)


def test_ideal_hit_ratio_after_a_warm_up_is_higher_and_agrees_with_a_simulation(edge):
    zipf = edge.Zipf(1000, 1.1, seed=5)
    p = zipf.probabilities
    warm, after = 2000, 8000
    assert edge.ideal_hit_ratio(p, after, before=warm) > edge.ideal_hit_ratio(p, warm + after)
    seen, hits = set(), 0
    for i in range(warm + after):
        rank = zipf.sample()
        hits += i >= warm and rank in seen
        seen.add(rank)
    assert hits / after == pytest.approx(edge.ideal_hit_ratio(p, after, before=warm), abs=0.01)


# ---- error kinds ----

@pytest.mark.parametrize("exc,kind", [
    (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
    (ConnectionResetError(104, "Connection reset by peer"), "connection reset"),
    (http.client.RemoteDisconnected("Remote end closed connection without response"), "closed without an answer"),
    (BrokenPipeError(32, "Broken pipe"), "broken pipe"),
    (socket.timeout("timed out"), "timeout"),
    (TimeoutError("timed out"), "timeout"),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS error (SSLCertVerificationError)"),
    (http.client.IncompleteRead(b"abc", 10), "incomplete body"),
    (http.client.BadStatusLine("garbage"), "HTTP protocol error (BadStatusLine)"),
    (OSError(113, "No route to host"), "network error (No route to host)"),
    (ValueError("x"), "unexpected ValueError"),
])
def test_each_error_is_counted_under_its_own_kind(edge, exc, kind):
    assert edge.error_kind(exc) == kind


@pytest.mark.parametrize("status,body_ok,kind", [
    (200, True, None), (200, False, "wrong body"), (502, True, "HTTP 502"), (503, False, "HTTP 503"), (404, True, "HTTP 404"),
])
def test_an_answer_is_right_only_with_200_and_the_object(edge, status, body_ok, kind):
    assert edge.answer_kind(status, body_ok) == kind


def test_object_content_is_deterministic_per_key(edge):
    a = edge.object_content("bench/edge/1/00001.png", 1000)
    assert len(a) == 1000 and a == edge.object_content("bench/edge/1/00001.png", 1000)
    assert a != edge.object_content("bench/edge/1/00002.png", 1000)


# ---- the tally and the report ----

def test_tally_counts_every_request_once_and_a_failure_is_not_a_hit(edge):
    t = edge.Tally()
    for status in ["HIT"] * 7 + ["MISS"] * 2:
        t.answer(status)
    t.error("timeout")
    assert (t.requests, t.error_count) == (10, 1)
    assert t.hit_ratio() == pytest.approx(0.7)
    u = edge.Tally()
    u.answer(None)
    u.error("timeout")
    u.error("HTTP 502")
    merged = edge.Tally.from_dict(t.to_dict()).merge(u)
    assert merged.answers == {"HIT": 7, "MISS": 2, "-": 1}
    assert merged.errors == {"timeout": 2, "HTTP 502": 1}
    assert edge.Tally().hit_ratio() == 0.0


def _run(edge, answers, errors, rps=100.0):
    overall = edge.Tally(answers, errors)
    return {"overall": overall.to_dict(), "warmup": edge.Tally().to_dict(), "after_warmup": overall.to_dict(),
            "requests": overall.requests, "rps": rps}


ARGS = argparse.Namespace(objects=10, size=1024, zipf_s=1.1, seed=1, clients=2, duration=5.0, warmup=1.0)


def test_report_names_each_error_kind_and_counts_them(edge):
    figures = {"edges": {"10.0.0.61": _run(edge, {"HIT": 90, "MISS": 8}, {"connection reset": 1, "wrong body": 1})},
               "bucket": _run(edge, {"-": 50}, {}, rps=25.0)}
    text, errors = edge.report(figures, ARGS)
    assert errors == 2
    assert "connection reset 1" in text and "wrong body 1" in text
    assert "Zipf s=1.1, seed 1" in text and "no pre-warming" in text
    assert "edge 10.0.0.61 / bucket: 4.00 x" in text
    assert "bucket errors by kind: none" in text


def test_report_without_errors_says_none(edge):
    figures = {"edges": {"10.0.0.61": _run(edge, {"HIT": 9, "MISS": 1}, {})}, "bucket": _run(edge, {"-": 5}, {})}
    text, errors = edge.report(figures, ARGS)
    assert errors == 0
    assert "0.9000" in text


@pytest.mark.parametrize("errors,rc", [({}, 0), ({"HTTP 503": 1}, 1)])
def test_main_exits_1_on_any_error(edge, monkeypatch, capsys, errors, rc):
    import json
    import subprocess
    import sys

    figures = {"edges": {"10.0.0.61": _run(edge, {"HIT": 9}, errors)}, "bucket": _run(edge, {"-": 5}, {})}
    monkeypatch.setattr(edge, "_lab_values", lambda: {
        "mastodon_config_s3_alias_host": "media.example", "fediops_s3_media_bucket": "b", "fediops_s3_endpoint_host": "s",
        "fediops_s3_endpoint_port": 8333, "fediops_s3_region": "r", "fediops_s3_media_access_key": "k",
        "fediops_s3_media_secret_key": "s"})
    monkeypatch.setattr(edge.subprocess, "run", lambda *a, **kw: subprocess.CompletedProcess(a, 0, json.dumps(figures), ""))
    monkeypatch.setattr(sys, "argv", ["edge.py", "--client", "10.0.0.31", "--edge", "10.0.0.61"])
    assert edge.main() == rc
    out = capsys.readouterr().out
    assert ("FAILED: 1 request(s)" in out) == bool(errors)
    print(out)
