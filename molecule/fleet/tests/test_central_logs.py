"""Central logs (issue 13): every host's journal reaches systemd-journal-remote on mon1 over HTTPS, so one
journalctl there reads the fleet. Debian 12 builds systemd without GnuTLS (`systemd-journal-remote --version`
says -GNUTLS), so the receiver cannot check client certificates: the senders check the receiver's certificate,
and only the fleet's addresses reach the port (nftables). Runs after the containers were restarted
(molecule side_effect): the upload and the receiver come back by themselves."""
import json
import subprocess
import time
import uuid

REMOTE_DIR = "/var/log/journal/remote"
SENDERS = ["db1", "web1"]
PORT = 19532            # fleet_journal_remote_port
WAIT_SECONDS = 90       # the upload retries every 10 s (common_journal_upload_retry_seconds) until mon1 answers


def _upload_log(host):
    return host.run("systemctl status --no-pager systemd-journal-upload; journalctl --no-pager -n 15 -u systemd-journal-upload").stdout


def _entries(mon1, marker, *where):
    out = mon1.check_output("journalctl %s --no-pager -o json MESSAGE=%s", " ".join(where), marker)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_message_logged_on_each_host_is_read_on_mon1(lab_host):
    mon1 = lab_host("mon1")
    markers = {}
    for name in SENDERS:
        markers[name] = "fediops-central-logs-%s-%s" % (name, uuid.uuid4().hex)
        lab_host(name).check_output("logger -t fediops-central-logs %s", markers[name])
    found = {}
    deadline = time.monotonic() + WAIT_SECONDS
    while len(found) < len(markers) and time.monotonic() < deadline:
        for name, marker in markers.items():
            # The receiver's directory appears with its first upload (LogsDirectory=).
            entries = _entries(mon1, marker, "--directory=%s" % REMOTE_DIR) if mon1.file(REMOTE_DIR).is_directory else []
            if entries:
                found[name] = entries
        time.sleep(2)
    missing = sorted(set(markers) - set(found))
    assert missing == [], "no entry from %s in mon1's %s after %d s; the senders' upload says: %s" % (
        missing, REMOTE_DIR, WAIT_SECONDS, dict((name, _upload_log(lab_host(name))) for name in missing))
    for name, entries in found.items():
        assert [e["_HOSTNAME"] for e in entries] == [name], entries
        assert entries[0]["SYSLOG_IDENTIFIER"] == "fediops-central-logs"
    # `journalctl -m` (every journal on the host, its own and the received ones) reads them too.
    for name, marker in markers.items():
        assert len(_entries(mon1, marker, "-m")) == 1, name


def test_each_sender_has_its_own_journal_file_named_by_its_address(lab_host, lab_addresses):
    # Without GnuTLS the receiver cannot read the client certificate's name; SplitMode=host names the file by
    # the sender's address instead.
    mon1 = lab_host("mon1")
    files = mon1.check_output("ls %s", REMOTE_DIR).split()
    for name in SENDERS:
        assert "remote-%s.journal" % lab_addresses[name] in files, files
    # mon1 reads its own journal locally and does not send it to itself.
    assert "remote-%s.journal" % lab_addresses["mon1"] not in files, files
    assert not mon1.service("systemd-journal-upload").is_enabled


def test_the_upload_runs_enabled_on_every_sender(lab_host):
    for name in SENDERS:
        upload = lab_host(name).service("systemd-journal-upload")
        assert upload.is_enabled and upload.is_running, (name, _upload_log(lab_host(name)))


def test_the_receiver_cannot_check_client_certificates_so_only_the_fleet_reaches_it(lab_host, lab_addresses):
    mon1 = lab_host("mon1")
    # The limitation this design answers: Debian's build has no GnuTLS.
    assert "-GNUTLS" in mon1.check_output("/lib/systemd/systemd-journal-remote --version")
    # A sender verifies the receiver: against another CA the TLS handshake fails.
    web1 = lab_host("web1")
    wrong_ca = web1.run(
        "curl -sS -o /dev/null --max-time 10 --capath /nonexistent --cacert /etc/ssl/certs/ISRG_Root_X1.pem https://%s:%s/upload",
        lab_addresses["mon1"], str(PORT))
    assert wrong_ca.rc != 0 and "certificate" in wrong_ca.stderr.lower(), (wrong_ca.rc, wrong_ca.stderr)
    # This machine (the podman bridge's gateway) is not in the fleet: the firewall drops it.
    outside = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "--max-time", "5", "-k", "https://%s:%d/upload" % (lab_addresses["mon1"], PORT)],
        capture_output=True, text=True, check=False)
    assert outside.returncode != 0, outside


def test_the_receiver_listens_only_on_the_private_address_behind_the_firewall(lab_host, lab_addresses):
    mon1 = lab_host("mon1")
    assert mon1.socket("tcp://%s:%d" % (lab_addresses["mon1"], PORT)).is_listening
    assert not mon1.socket("tcp://0.0.0.0:%d" % PORT).is_listening
    assert 'comment "journal-remote"' in mon1.check_output("nft list table inet fediops")
    requires = mon1.check_output("systemctl show -p Requires --value systemd-journal-remote.socket")
    assert "nftables.service" in requires.split()
