"""Central logs (issue 13): the preflight refuses an upload with no receiver or without its certificates, naming
the variable, before any host changes."""
from .test_preflight import run_preflight


def _refused(result, message):
    assert result.returncode != 0, result.stdout[-3000:]
    assert message in " ".join(result.stdout.split()), result.stdout[-3000:]


def test_upload_to_a_host_without_the_receiver_is_refused(tmp_path):
    _refused(run_preflight(tmp_path, limit="db1,mon1", journal_remote_enabled=False),
             "common_journal_upload_enabled is true on db1 but journal_remote_enabled is not true for mon1")


def test_provided_certificates_missing_on_the_controller_are_refused(tmp_path):
    result = run_preflight(tmp_path, limit="db1,mon1", common_journal_upload_tls_mode="provided",
                           common_journal_upload_cert="/nonexistent/db1.crt", common_journal_upload_key="")
    _refused(result, "On db1 (common_journal_upload_tls_mode=provided): common_journal_upload_cert, "
                     "common_journal_upload_key must name a file on the controller")


def test_receiver_without_its_ca_is_refused(tmp_path):
    _refused(run_preflight(tmp_path, limit="mon1", journal_remote_ca_cert="/nonexistent/ca.crt"),
             "On mon1 (journal_remote_tls_mode=lab_ca): journal_remote_ca_cert must name a file on the controller")
