"""The nginx exporter on the edges (issue 13): it reads nginx's stub_status on loopback and serves on the
private address. Each edge scrapes itself here; mon1's scrape of both edges (the firewall admits the monitoring
hosts only) is checked with every other target in tests/test_monitoring.py.
"""
import pytest

from edge_client import MEDIA_HOST, WEB_HOST
from exposition import only, scrape


@pytest.mark.parametrize("edge", ["edge-eu", "edge-us"])
def test_nginx_exporter_reads_stub_status(lab_host, lab_addresses, edge):
    host = lab_host(edge)
    metrics = scrape(host, "http://%s:9113/metrics" % lab_addresses[edge])
    assert only(metrics, "nginx_up") == 1
    assert only(metrics, "nginx_connections_active") >= 1  # this scrape's own stub_status request
    assert only(metrics, "nginx_http_requests_total") >= 1
    assert host.socket("tcp://%s:9113" % lab_addresses[edge]).is_listening
    assert not host.socket("tcp://0.0.0.0:9113").is_listening
    assert "nftables.service" in host.check_output("systemctl show -p Requires --value prometheus-nginx-exporter").split()


@pytest.mark.parametrize("edge", ["edge-eu", "edge-us"])
def test_stub_status_is_served_on_loopback_only(lab_host, lab_addresses, connect_error, edge):
    host = lab_host(edge)
    address = lab_addresses[edge]
    assert "Active connections:" in host.check_output("curl -sS --max-time 10 http://127.0.0.1:8080/stub_status")
    assert connect_error(host, address, 8080) == "Connection refused"
    # The public listeners, under every name the edge serves, never answer with the counters.
    answers = [host.run("curl -sS --max-time 10 http://%s/stub_status" % address)]
    for name in (MEDIA_HOST, WEB_HOST):
        answers.append(host.run("curl -sSk --max-time 10 --resolve %s:443:%s https://%s/stub_status" % (name, address, name)))
    assert all(answer.rc == 0 for answer in answers), [(a.rc, a.stderr) for a in answers]  # they did answer
    assert not any("Active connections" in answer.stdout for answer in answers), [a.stdout[:200] for a in answers]
