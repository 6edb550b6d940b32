"""HTTPS to an edge by address with the public hostname in SNI and Host, verified against the lab CA.

The lab has no DNS for the public names; this connects to the edge's address and still checks the
certificate for the name, as a visitor's browser would.
"""
import http.client
import os
import socket
import ssl
import threading

MEDIA_HOST = "media.lab.fediops.example"
WEB_HOST = "lab.fediops.example"


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
    """One keep-alive connection; reconnects after an error."""

    def __init__(self, address, name):
        self.address, self.name = address, name
        self.conn = None

    def get(self, path, headers=None, method="GET"):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = EdgeConnection(self.address, self.name)
            try:
                self.conn.request(method, path, headers=headers or {})
                response = self.conn.getresponse()
                body = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, body
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

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
