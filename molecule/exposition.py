"""Read a Prometheus exporter's text exposition from a lab host (the scenarios' exporter tests share it).

Importable from any scenario's tests: pytest puts molecule/ on sys.path for the conftest.py beside this file.
"""
import re

# Run on the lab host, so the fetch goes through that host's firewall and addresses.
_FETCH = (
    "import sys,urllib.request\n"
    "try:\n"
    "    print(urllib.request.urlopen(sys.argv[1], timeout=15).read().decode())\n"
    "except Exception as e:\n"
    "    print('fetch failed: %s' % e); sys.exit(1)\n"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(host, url):
    """{metric name: {frozenset of (label, value): value}} of `url` fetched from `host`; fails when it does not answer."""
    result = host.run("python3 -c %s %s", _FETCH, url)
    assert result.rc == 0, "%s did not answer: %s" % (url, (result.stdout + result.stderr).strip()[-400:])
    found = {}
    for line in result.stdout.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        found.setdefault(name, {})[frozenset(_LABEL.findall(labels))] = float(value)
    assert found, "%s answered no series" % url
    return found


def only(metrics, name):
    """The value of the single series of `name` (missing or several: the test fails)."""
    series = metrics.get(name, {})
    assert len(series) == 1, "%s: expected one series, got %s" % (name, series)
    return list(series.values())[0]
