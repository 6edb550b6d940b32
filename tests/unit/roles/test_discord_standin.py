"""The lab's Discord stand-in (roles/monitoring/files/fediops_discord_standin.py) answers like Discord (204) and
records every POST body as one JSON line."""
import http.client
import importlib.util
import json
import os
import threading
from http.server import ThreadingHTTPServer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SOURCE = os.path.join(REPO, "roles", "monitoring", "files", "fediops_discord_standin.py")


def _standin(log_path):
    spec = importlib.util.spec_from_file_location("fediops_discord_standin", SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = ThreadingHTTPServer(("127.0.0.1", 0), module.make_handler(str(log_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _post(port, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("POST", "/api/webhooks/1/token", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def test_posts_are_answered_204_and_recorded_one_json_line_each(tmp_path):
    log = tmp_path / "posts.jsonl"
    server = _standin(log)
    try:
        post = {"content": "", "embeds": [{"title": "[FIRING:1] SyntheticCheckFailing edge-eu", "description": "probe\nweb_health"}]}
        assert _post(server.server_address[1], json.dumps(post)) == (204, b"")
        assert _post(server.server_address[1], json.dumps({"content": "second"})) == (204, b"")
        status, _body = _post(server.server_address[1], "not json")
        assert status == 400
    finally:
        server.shutdown()
    lines = log.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [post, {"content": "second"}, "not json"]
