"""Each fault of issue 13 fires its alert into the Discord stand-in and resolves after the fix.

The faults are made together (each on its own host or its own metric, so they do not mask each other), then
fixed together; every fault's fix runs even when a check fails. Evidence is the stand-in's posts (Discord's
webhook body: embeds whose title is Alertmanager's `[FIRING:1] <label values>` / `[RESOLVED] ...`); the lab
posts one message per alert (monitoring_alertmanager_group_by: ["..."]) and holds each alert a tenth of
production's time (monitoring_alert_for_scale: 0.1).

| fault | where | alert |
|---|---|---|
| replica replay paused, WAL written | db2 / db1 | PostgresReplicaLagging (db1, per standby) |
| ingress pool stopped, jobs enqueued | sidekiq1 | SidekiqPoolWithoutProcess, SidekiqQueueLatencyHigh (ingress) |
| nftables stopped | sidekiq1 | FirewallNotLoaded (sidekiq1) |
| certificate issued to expire in 7 days | edge-eu | TlsCertificateExpiringSoon (edge-eu) |
| archive_command failing | db1 | WalArchivingFailing (db1) |
| Puma stopped | every web host (web1, web2) | SyntheticCheckFailing (web_health through edge-eu) |
"""
import json
import os
import subprocess
import tempfile
import time

from test_monitoring import MON, POSTS, query, wait_for

EDGE_CERT = "/etc/nginx/fediops/tls/edge.crt"
EDGE_KEY = "/etc/nginx/fediops/tls/edge.key"
SAVED = ".fediops-alert-test"
FIREWALL_HOST = "sidekiq1"
LAG_TABLE = "fediops_alert_test_lag"
FIRE_TIMEOUT = 240
RESOLVE_TIMEOUT = 240
# Run after the scenario's other tests (molecule/conftest.py): the faults and their repairs change the fleet.
BREAKS_THE_FLEET = True


def psql(host, sql, db="postgres"):
    return host.check_output("runuser -u postgres -- psql -XAt -d %s -c %s", db, sql).strip()


def write_wal(db1, megabytes):
    psql(db1, "CREATE TABLE IF NOT EXISTS %s (x text)" % LAG_TABLE)
    psql(db1, "INSERT INTO %s SELECT repeat('x', 1000) FROM generate_series(1, %d)" % (LAG_TABLE, megabytes * 1000))


def posts(mon):
    """Alertmanager's posts (embeds); the autoscaler's decisions are plain `content` posts to the same channel."""
    out = mon.check_output("cat %s", POSTS)
    found = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [p for p in found if not str(p.get("content", "")).startswith("sidekiq autoscale:")]


def embeds(post_list, status):
    """(title, whole embed text) of every embed in `status` (FIRING or RESOLVED)."""
    found = []
    for post in post_list:
        assert isinstance(post, dict) and isinstance(post.get("embeds"), list), post
        for embed in post["embeds"]:
            if embed.get("title", "").startswith("[%s" % status):
                found.append((embed["title"], json.dumps(embed)))
    return found


def lab_ca():
    """The lab CA's files on this machine (beside the lab's SSH key: lab/bootstrap.sh makes both)."""
    home = os.path.dirname(os.path.dirname(os.environ["FEDIOPS_LAB_SSH_KEY"]))
    cert, key = os.path.join(home, "ca", "ca.crt"), os.path.join(home, "ca", "ca.key")
    assert os.path.exists(cert) and os.path.exists(key), "no lab CA at %s: no evidence" % home
    return cert, key


class Faults:
    """Each fault: break() makes it, fix() undoes it; `alerts` names (alertname, words its post title carries)."""

    def __init__(self, lab_host, lab_addresses, lab_groups):
        self.host = lab_host
        self.addresses = lab_addresses
        self.groups = lab_groups
        self.stopped_with_firewall = []

    # ---- replica lag: replay paused on db2, WAL written on db1 ----
    def lag_break(self):
        psql(self.host("db2"), "SELECT pg_wal_replay_pause()")
        write_wal(self.host("db1"), 8)

    def lag_fix(self):
        psql(self.host("db2"), "SELECT pg_wal_replay_resume()")

    # ---- ingress backlog with its pool stopped ----
    def ingress_break(self):
        # The autoscaler brings a pool below its min back at once (docs/autoscaling.md): paused, as an operator
        # stopping a pool on purpose would.
        self.host(MON).check_output("systemctl stop fediops-sidekiq-autoscaler.service")
        self.host("sidekiq1").check_output("systemctl stop mastodon-sidekiq@ingress.service")
        web1 = self.host("web1")
        for number in range(3):
            url = "http://%s:3000/fixture/enqueue?queue=ingress&note=alert-test-%d" % (self.addresses["web1"], number)
            web1.check_output("curl -fsS -X POST %s", url)

    def ingress_fix(self):
        self.host("sidekiq1").check_output("systemctl start mastodon-sidekiq@ingress.service")
        self.host(MON).check_output("systemctl start fediops-sidekiq-autoscaler.service")

    # ---- firewall gone on sidekiq1 (the node exporter, which requires it, stops with it) ----
    # Not on a database host: Postgres requires the firewall too, and a stopped standby would hide the lag fault.
    def firewall_break(self):
        host = self.host(FIREWALL_HOST)
        before = set(host.check_output(
            "systemctl list-units --type=service --state=running --plain --no-legend | awk '{print $1}'").split())
        host.check_output("systemctl stop nftables.service")
        after = set(host.check_output(
            "systemctl list-units --type=service --state=running --plain --no-legend | awk '{print $1}'").split())
        self.stopped_with_firewall = sorted(before - after)

    def firewall_fix(self):
        # What the runbook says: the firewall first, then what stopped with it.
        host = self.host(FIREWALL_HOST)
        host.check_output("systemctl start nftables.service %s" % " ".join(self.stopped_with_firewall))
        # The firewall check's timer runs every minute; run it now as the runbook does.
        host.check_output("systemctl start fediops-firewall-check.service")

    # ---- a certificate that expires within 14 days on edge-eu ----
    def tls_break(self):
        edge = self.host("edge-eu")
        edge.check_output("cp -p %s %s%s", EDGE_CERT, EDGE_CERT, SAVED)
        csr = edge.check_output("openssl x509 -x509toreq -in %s -signkey %s -copy_extensions copyall", EDGE_CERT, EDGE_KEY)
        ca_cert, ca_key = lab_ca()
        with tempfile.TemporaryDirectory() as scratch:
            with open(os.path.join(scratch, "req.pem"), "w") as handle:
                handle.write(csr + "\n")
            subprocess.run(["openssl", "x509", "-req", "-in", os.path.join(scratch, "req.pem"), "-CA", ca_cert,
                            "-CAkey", ca_key, "-days", "7", "-copy_extensions", "copyall",
                            "-out", os.path.join(scratch, "short.crt")], check=True, capture_output=True)
            with open(os.path.join(scratch, "short.crt")) as handle:
                short = handle.read()
        edge.check_output("printf '%%s\\n' %s > %s", short.strip(), EDGE_CERT)
        # A restart, not a reload: after a reload, workers of the old generation keep serving their open
        # (keep-alive, streaming) connections with the old certificate for a while.
        edge.check_output("systemctl restart nginx.service && systemctl start fediops-edge-tls-expiry.service")

    def tls_fix(self):
        edge = self.host("edge-eu")
        edge.check_output("test -f %s%s && mv %s%s %s", EDGE_CERT, SAVED, EDGE_CERT, SAVED, EDGE_CERT)
        edge.check_output("systemctl restart nginx.service && systemctl start fediops-edge-tls-expiry.service")

    # ---- WAL archiving failing on db1 ----
    def archive_break(self):
        db1 = self.host("db1")
        psql(db1, "ALTER SYSTEM SET archive_command = '/bin/false'")
        psql(db1, "SELECT pg_reload_conf()")
        write_wal(db1, 1)
        psql(db1, "SELECT pg_switch_wal()")

    def archive_fix(self):
        db1 = self.host("db1")
        psql(db1, "ALTER SYSTEM RESET archive_command")
        psql(db1, "SELECT pg_reload_conf()")
        # A new segment to archive: the archiver retries the failed one first, then this one.
        write_wal(db1, 1)
        psql(db1, "SELECT pg_switch_wal()")

    # ---- Puma stopped on every web host (the synthetic check through the edge; with one left, the edge uses it) ----
    def web_hosts(self):
        hosts = [h for h in self.groups.get("web", []) if h in self.addresses]
        assert hosts, "no web host in this run"
        return hosts

    def puma_break(self):
        for name in self.web_hosts():
            self.host(name).check_output("systemctl stop mastodon-web.service")

    def puma_fix(self):
        for name in self.web_hosts():
            self.host(name).check_output("systemctl start mastodon-web.service")


FAULTS = [
    ("lag", [("PostgresReplicaLagging", ["db1"])]),
    ("ingress", [("SidekiqPoolWithoutProcess", ["ingress"]), ("SidekiqQueueLatencyHigh", ["ingress"])]),
    ("firewall", [("FirewallNotLoaded", [FIREWALL_HOST])]),
    ("tls", [("TlsCertificateExpiringSoon", ["edge-eu"])]),
    ("archive", [("WalArchivingFailing", ["db1"])]),
    ("puma", [("SyntheticCheckFailing", ["web_health", "edge-eu"])]),
]


def matching(found, alert, words):
    return [title for title, _text in found if alert in title and all(word in title for word in words)]


def test_each_fault_fires_its_alert_into_discord_and_resolves_after_the_fix(lab_host, lab_addresses, lab_groups):
    mon = lab_host(MON)
    mon_address = lab_addresses[MON]
    assert mon.service("fediops-discord-standin").is_running
    # Earlier steps of the scenario (the upgrade's gate faults, its load) may have fired some of these alerts: wait
    # until none fires (or is pending), so every post counted below belongs to this test's faults.
    names = "|".join(alert for _name, alerts in FAULTS for alert, _words in alerts)
    wait_for("none of the test's alerts firing or pending before the faults",
             lambda: query(mon_address, 'count(ALERTS{alertname=~"%s"}) or vector(0)' % names)[0]["value"][1] == "0",
             timeout=300, interval=5)
    faults = Faults(lab_host, lab_addresses, lab_groups)
    before = len(posts(mon))
    started = time.monotonic()
    fired_at, resolved_at, fired_post = {}, {}, {}
    broken = []
    try:
        for name, _alerts in FAULTS:
            broken.append(name)
            getattr(faults, name + "_break")()

        def all_fired():
            current = posts(mon)
            for name, alerts in FAULTS:
                for alert, words in alerts:
                    if (name, alert) in fired_at:
                        continue
                    for index in range(before, len(current)):
                        if matching(embeds([current[index]], "FIRING"), alert, words):
                            fired_at[(name, alert)] = time.monotonic() - started
                            fired_post[(name, alert)] = index
                            break
            return len(fired_at) == sum(len(alerts) for _n, alerts in FAULTS)

        deadline = time.monotonic() + FIRE_TIMEOUT
        while not all_fired() and time.monotonic() < deadline:
            time.sleep(3)
        missing = [(n, a) for n, alerts in FAULTS for a, _w in alerts if (n, a) not in fired_at]
        assert not missing, "no FIRING post within %d s for %s; posts since the faults: %s" % (
            FIRE_TIMEOUT, missing, [t for t, _x in embeds(posts(mon)[before:], "FIRING")])
    finally:
        fixed_from = time.monotonic()
        errors = []
        for name in broken:
            try:
                getattr(faults, name + "_fix")()
            except AssertionError as error:  # every other fix still runs
                errors.append("%s: %s" % (name, error))
        assert not errors, "fixes failed: %s" % errors

    def all_resolved():
        current = posts(mon)
        for name, alerts in FAULTS:
            for alert, words in alerts:
                key = (name, alert)
                # Only a RESOLVED post after this fault's own FIRING post counts.
                if key in fired_at and key not in resolved_at and \
                        matching(embeds(current[fired_post[key] + 1:], "RESOLVED"), alert, words):
                    resolved_at[key] = time.monotonic() - fixed_from
        return len(resolved_at) == len(fired_at)

    deadline = time.monotonic() + RESOLVE_TIMEOUT
    while not all_resolved() and time.monotonic() < deadline:
        time.sleep(3)
    missing = [key for key in fired_at if key not in resolved_at]
    assert not missing, "no RESOLVED post within %d s of the fixes for %s" % (RESOLVE_TIMEOUT, missing)
    for key in sorted(fired_at):
        print("%-8s %-28s fired %4.0f s after the faults, resolved %4.0f s after the fixes"
              % (key[0], key[1], fired_at[key], resolved_at[key]))
    # The faults left nothing behind.
    psql(lab_host("db1"), "DROP TABLE IF EXISTS %s" % LAG_TABLE)
    wait_for("web /health through edge-eu up again",
             lambda: query(mon_address, 'probe_success{probe="web_health"} == 1'), timeout=60)
    wait_for("every certificate seen by the probes valid beyond 14 days again",
             lambda: not query(mon_address, 'probe_ssl_earliest_cert_expiry - time() < 14 * 86400'), timeout=60)

