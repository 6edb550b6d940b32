"""The Redis exporter (issue 13): one per Redis host, scraping each instance on demand
(/scrape?target=redis://<address>:<port>) as the monitoring ACL user; mon1 may scrape it, edge-eu may not.
"""
import pytest

from exposition import only, scrape

# Each instance of this scenario (molecule/fleet/inventory.yml and the lab's group_vars): host -> {name: port}.
INSTANCES = {"redis-cache": {"cache": 6380, "persistent-replica": 6381}, "redis-persistent": {"persistent": 6379}}


@pytest.mark.parametrize("server,name,port", [(h, n, p) for h, ports in INSTANCES.items() for n, p in ports.items()])
def test_exporter_reads_every_instance_as_the_monitoring_user(lab_host, lab_addresses, server, name, port):
    address = lab_addresses[server]
    metrics = scrape(lab_host("mon1"), "http://%s:9121/scrape?target=redis://%s:%d" % (address, address, port))
    assert only(metrics, "redis_up") == 1, name
    # 1 when the login or INFO was refused (a command the ACL user lacks otherwise only drops its own series).
    assert only(metrics, "redis_exporter_last_scrape_error") == 0, (name, metrics.get("redis_exporter_last_scrape_error"))
    assert only(metrics, "redis_rdb_last_bgsave_status") == 1, name
    assert only(metrics, "redis_aof_last_write_status") == 1, name
    assert "redis_slowlog_length" in metrics and "redis_connected_clients" in metrics, name
    info = metrics.get("redis_instance_info", {})
    assert [dict(labels)["tcp_port"] for labels in info] == [str(port)], info
    assert [dict(labels)["role"] for labels in info] == ["slave" if name == "persistent-replica" else "master"], info


def test_exporter_is_one_per_host_on_the_private_address_only_for_monitoring(lab_host, lab_addresses, connect_error):
    for server in INSTANCES:
        host = lab_host(server)
        assert host.socket("tcp://%s:9121" % lab_addresses[server]).is_listening, server
        assert not host.socket("tcp://0.0.0.0:9121").is_listening, server
        assert "nftables.service" in host.check_output("systemctl show -p Requires --value prometheus-redis-exporter").split()
        assert connect_error(lab_host("edge-eu"), lab_addresses[server], 9121) == "No route to host", server
        settings = host.file("/etc/default/prometheus-redis-exporter")
        assert settings.mode == 0o600 and settings.user == "root", server  # holds the monitoring password
        # No default target: the exporter's own /metrics scrapes no instance.
        own = scrape(lab_host("mon1"), "http://%s:9121/metrics" % lab_addresses[server])
        assert "redis_up" not in own, server
