"""The monitoring role's preflight refuses bad storage, retention, intervals and webhook URLs before any change,
naming the variable (and never printing the webhook URL, a secret)."""
from .test_preflight import run_preflight


def _refused(result, *expected):
    assert result.returncode != 0, result.stdout[-3000:]
    text = " ".join(result.stdout.split())
    for sentence in expected:
        assert sentence in text, (sentence, text[-3000:])


def test_the_lab_monitoring_host_passes(tmp_path):
    result = run_preflight(tmp_path, limit="mon1")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # The webhook rule is in the role's one checks task, named for the secrets test (which counts that prefix).
    assert ("monitoring : Refuse weak or placeholder secrets (a missing, placeholder or non-HTTP Discord webhook URL"
            in result.stdout)


def test_storage_path_under_etc_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="mon1", monitoring_prometheus_storage_path="/etc/prometheus/data")
    _refused(result, "monitoring_prometheus_storage_path=/etc/prometheus/data on mon1 must be an absolute path of its own")


def test_zero_retention_size_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="mon1", monitoring_prometheus_retention_size="0GB")
    _refused(result, "monitoring_prometheus_retention_size=0GB must be a non-zero size")


def test_scrape_timeout_longer_than_the_interval_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="mon1", monitoring_scrape_timeout="1m")
    _refused(result, "monitoring_scrape_timeout=1m on mon1 is longer than monitoring_scrape_interval=5s")


def test_placeholder_webhook_url_is_refused_without_printing_it(tmp_path):
    url = "https://discord.com/api/webhooks/CHANGE-ME/unset-9f2c"
    result = run_preflight(tmp_path, limit="mon1", monitoring_discord_webhook_url=url)
    _refused(result, "On mon1: monitoring_discord_webhook_url looks like a placeholder")
    assert "unset-9f2c" not in result.stdout + result.stderr
