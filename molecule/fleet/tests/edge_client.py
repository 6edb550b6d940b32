"""HTTPS to an edge by address with the public hostname in SNI and Host, verified against the lab CA.

The lab has no DNS for the public names; this connects to the edge's address and still checks the
certificate for the name, as a visitor's browser would.

No request is ever retried here: one request, one outcome. http.client sends a request once and never
resends it (it opens a new connection only before a request, when there is none); Client.get raises
the first error. The only retry on the path is the edge's own: nginx's proxy_next_upstream moves an
idempotent request whose web host refused, timed out or answered 502/503 to the other web host,
server-side, inside the one answer the visitor gets - which is what the tests measure.
"""
import http.client
import importlib.util
import os
import socket
import ssl
import threading

MEDIA_HOST = "media.lab.fediops.example"
WEB_HOST = "lab.fediops.example"
REPO = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))


def _bench_edge():
    """bench/edge.py, loaded by path: its error_kind names failed requests the same way in the bench and here."""
    spec = importlib.util.spec_from_file_location("fediops_bench_edge", os.path.join(REPO, "bench", "edge.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


error_kind = _bench_edge().error_kind


def lab_home():
    return os.environ.get("FEDIOPS_LAB_HOME", os.path.join(os.environ["HOME"], ".fediops-lab"))


def lab_ca_context():
    return ssl.create_default_context(cafile=os.path.join(lab_home(), "ca", "ca.crt"))


class EdgeConnection(http.client.HTTPSConnection):
    def __init__(self, address, name, context=None, timeout=30):
        super().__init__(name, 443, context=context or lab_ca_context(), timeout=timeout)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Client:
    """One keep-alive connection. A failed request raises its error and drops the connection; the next
    request opens a new one. Nothing is retried."""

    def __init__(self, address, name):
        self.address, self.name = address, name
        self.conn = None

    def get(self, path, headers=None, method="GET"):
        if self.conn is None:
            self.conn = EdgeConnection(self.address, self.name)
        try:
            self.conn.request(method, path, headers=headers or {})
            response = self.conn.getresponse()
            body = response.read()
        except BaseException:
            self.conn.close()
            self.conn = None
            raise
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body

    def close(self):
        if self.conn is not None:
            self.conn.close()


def parallel(count, func):
    """Run func(i) in `count` threads released together; return the results in order."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(i):
        barrier.wait()
        try:
            results[i] = func(i)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
