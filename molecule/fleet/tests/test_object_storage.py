"""Object storage after the containers were restarted (molecule side_effect).

web1 is the client, like Mastodon and pgBackRest; every request goes to https://storage:8333, whose
certificate (signed by the lab CA) web1 verifies with its system trust store.
"""
import os
import shlex

import pytest
import yaml

ROOT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ENDPOINT = "https://storage:8333"
MEDIA, BACKUPS = "mastodon-media", "fediops-pgbackrest"
MEDIA_KEY = "media_attachments/files/113/456/789/012/345/678/original/0a1b2c3d4e5f6789.png"


@pytest.fixture(scope="module")
def secrets():
    with open(os.path.join(ROOT, "inventories/lab/group_vars/all/secrets.yml")) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def s3(lab_host, secrets):
    """s3(method, path, creds=None|'media'|'backups', data=None) -> (HTTP status, body), from web1."""
    keys = {
        "media": (secrets["fediops_s3_media_access_key"], secrets["fediops_s3_media_secret_key"]),
        "backups": (secrets["fediops_s3_backups_access_key"], secrets["fediops_s3_backups_secret_key"]),
    }
    web1 = lab_host("web1")

    def request(method, path, creds=None, data=None):
        command = ["curl", "-sS", "-X", method, "-o", "/tmp/s3-body", "-w", "%{http_code}"]
        if creds:
            command += ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "%s:%s" % keys[creds]]
        if data is not None:
            web1.run("printf %s > /tmp/s3-upload", data)
            command += ["-T", "/tmp/s3-upload"]
        result = web1.run(" ".join(shlex.quote(part) for part in command + [ENDPOINT + path]))
        assert result.rc == 0, result.stderr
        return int(result.stdout), web1.file("/tmp/s3-body").content_string

    return request


def test_media_uploaded_before_the_restart_is_fetched_anonymously_by_key(s3):
    status, body = s3("GET", "/%s/%s" % (MEDIA, MEDIA_KEY))
    assert status == 200
    assert body == "fediops media object\n"


def test_anonymous_listing_of_the_media_bucket_is_refused(s3):
    assert s3("GET", "/%s/" % MEDIA)[0] == 403
    assert s3("GET", "/%s?list-type=2&prefix=media_attachments/" % MEDIA)[0] == 403
    # The owner of the credentials may list it.
    status, body = s3("GET", "/%s?list-type=2" % MEDIA, creds="media")
    assert status == 200 and MEDIA_KEY in body


def test_anonymous_upload_to_media_is_refused(s3):
    assert s3("PUT", "/%s/media_attachments/anonymous.png" % MEDIA, data="x")[0] == 403


def test_backups_bucket_takes_writes_with_its_own_credentials_only(s3):
    path = "/%s/archive/main/15-1/0000000100000000/000000010000000000000001-abc.gz" % BACKUPS
    assert s3("PUT", path, creds="backups", data="wal segment")[0] == 200
    assert s3("GET", path, creds="backups") == (200, "wal segment")
    status, body = s3("GET", "/%s?list-type=2&prefix=archive%%2F" % BACKUPS, creds="backups")
    assert status == 200 and "000000010000000000000001-abc.gz" in body
    # Neither the public nor Mastodon's key may touch the backups.
    assert s3("GET", path)[0] == 403
    assert s3("GET", path, creds="media")[0] == 403
    assert s3("PUT", "/%s/archive/evil" % BACKUPS, creds="media", data="x")[0] == 403
    # and the backups key cannot write media.
    assert s3("PUT", "/%s/media_attachments/x.png" % MEDIA, creds="backups", data="x")[0] == 403


def test_gateway_speaks_only_https_with_a_lab_ca_certificate(lab_host, lab_addresses):
    web1 = lab_host("web1")
    # Verified against the system trust store (the lab CA), by name and by address.
    assert web1.run("curl -sS -o /dev/null https://storage:8333/").rc == 0
    assert web1.run("curl -sS -o /dev/null https://%s:8333/" % lab_addresses["storage"]).rc == 0
    plain = web1.run("curl -sS http://storage:8333/")
    assert "HTTPS" in plain.stdout + plain.stderr or plain.rc != 0


def test_internal_servers_listen_on_loopback_only(lab_host, lab_addresses):
    storage = lab_host("storage")
    assert storage.socket("tcp://%s:8333" % lab_addresses["storage"]).is_listening
    for port in (9333, 8080, 8888):
        assert storage.socket("tcp://127.0.0.1:%d" % port).is_listening
        assert not storage.socket("tcp://0.0.0.0:%d" % port).is_listening
        assert not storage.socket("tcp://%s:%d" % (lab_addresses["storage"], port)).is_listening


def test_service_runs_as_its_own_user_guarded_by_the_firewall(lab_host):
    storage = lab_host("storage")
    service = storage.service("seaweedfs")
    assert service.is_running and service.is_enabled
    assert storage.check_output("systemctl show -p User --value seaweedfs") == "seaweedfs"
    assert "nftables.service" in storage.check_output("systemctl show -p Requires --value seaweedfs").split()
    assert 'comment "seaweedfs-s3"' in storage.check_output("nft list table inet fediops")
    assert "telemetry=false" in storage.check_output("systemctl show -p ExecStart --value seaweedfs")
