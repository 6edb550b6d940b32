"""The common role after the containers were restarted (molecule side_effect)."""


def test_firewall_loads_at_boot(lab_host):
    db1 = lab_host("db1")
    assert db1.service("nftables").is_enabled
    ruleset = db1.check_output("nft list table inet fediops")
    assert "policy drop" in ruleset
    assert 'comment "node-exporter"' in ruleset
    assert 'comment "ssh"' in ruleset


def test_firewall_state_is_exported_for_monitoring(lab_host):
    db1 = lab_host("db1")
    db1.run_test("systemctl start fediops-firewall-check.service")
    metrics = db1.file("/var/lib/prometheus/node-exporter/fediops_firewall.prom").content_string
    assert "fediops_firewall_loaded 1" in metrics


def test_allowed_peer_reaches_node_exporter(lab_host, lab_addresses, connect_error):
    mon1 = lab_host("mon1")
    assert connect_error(mon1, lab_addresses["db1"], 9100) is None
    metrics = mon1.check_output("curl -fsS http://%s:9100/metrics", lab_addresses["db1"])
    assert "fediops_firewall_loaded 1" in metrics


def test_peer_outside_allowed_groups_is_refused_by_the_firewall(lab_host, lab_addresses, connect_error):
    web1 = lab_host("web1")
    # admin-prohibited ICMP, not a closed port: the firewall said no.
    assert connect_error(web1, lab_addresses["db1"], 9100) == "No route to host"


def test_exporter_listens_only_on_the_private_address(lab_host, lab_addresses):
    db1 = lab_host("db1")
    assert db1.socket("tcp://%s:9100" % lab_addresses["db1"]).is_listening
    assert not db1.socket("tcp://0.0.0.0:9100").is_listening


def test_exporter_will_not_run_without_the_firewall(lab_host):
    db1 = lab_host("db1")
    requires = db1.check_output("systemctl show -p Requires --value prometheus-node-exporter")
    assert "nftables.service" in requires.split()
