"""The Discord stand-in (lab only): answers Discord webhook posts like Discord does and records them.

Alertmanager's Discord receiver posts JSON ({"content": ..., "embeds": [...]}) to the webhook URL;
Discord answers 204 No Content. This service does the same and appends every POST body, as one
compact JSON line, to the log file (--log), so tests can read what a volunteer would have seen.
A body that is not JSON is refused with 400 (as Discord does) and recorded as a JSON string.
Standard library only.
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024
LOCK = threading.Lock()


def make_handler(log_path):
    class Handler(BaseHTTPRequestHandler):
        server_version = "fediops-discord-standin"

        def _answer(self, status, body=b""):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if body:
                self.send_header("Content-Type", "application/json")
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, b'{"message": "Request entity too large", "code": 40005}')
                return
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw.decode("utf-8"))
                status = 204
            except (UnicodeDecodeError, ValueError):
                body = raw.decode("utf-8", "replace")
                status = 400
            line = json.dumps(body, separators=(",", ":"), sort_keys=True)
            with LOCK, open(log_path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
            if status == 204:
                self._answer(204)
            else:
                self._answer(400, b'{"message": "Cannot send an empty message", "code": 50006}')

        def do_GET(self):
            # Discord answers GET on a webhook URL with the webhook's description; a health check is enough here.
            self._answer(200, b'{"name": "fediops-discord-standin"}')

        def log_message(self, fmt, *args):  # one line per request in the journal
            print("%s %s" % (self.address_string(), fmt % args), flush=True)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, default=9094)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    ThreadingHTTPServer((args.address, args.port), make_handler(args.log)).serve_forever()


if __name__ == "__main__":
    main()
