"""``wirebeat test output`` for ``output.elasticsearch``: against the real OpenSearch node
(connect, version) and a recording fake server (the credentials sent; a wrong password
answered 401, as a secured cluster does: the test node runs without the security plugin).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest

from shipper.agent.settings import load_settings
from shipper.agent.testoutput import test_output as run_test_output
from tests.interop.opensearch_node import OpenSearchNode, opensearch_fixture  # noqa: F401 (the fixture)
from tests.setup.fakehttp import Request, fake_server

pytestmark = pytest.mark.integration


def _run(tmp_path: Path, es: dict[str, Any]) -> tuple[int, str]:
    cfg = tmp_path / "wb.yml"
    cfg.write_text(json.dumps({"output": {"elasticsearch": es}, "path": {"data": str(tmp_path / "data")}}))
    settings, _ = load_settings(str(cfg), required=True)
    buf = io.StringIO()
    rc = run_test_output(settings, buf)
    return rc, buf.getvalue()


def test_against_opensearch(opensearch: OpenSearchNode, tmp_path: Path) -> None:
    rc, text = _run(tmp_path, {"hosts": [opensearch.host]})
    print("\n" + text)
    assert rc == 0, text
    version = opensearch.request("GET", "/")["version"]["number"]
    assert text.splitlines() == [
        f"elasticsearch: {opensearch.url}...",
        "  parse url... OK",
        "  connection...",
        "    parse host... OK",
        "    dns lookup... OK",
        "    addresses: 127.0.0.1",
        "    dial up... OK",
        "  TLS... WARN secure connection disabled",
        "  talk to server... OK",
        f"  version: {version} (opensearch)",
    ]
    # A second host that is down: its dial fails and the verdict is 1.
    rc, text = _run(tmp_path, {"hosts": [opensearch.host, "127.0.0.1:1"]})
    assert rc == 1
    assert "elasticsearch: http://127.0.0.1:1...\n" in text
    assert "dial up... ERROR dial tcp 127.0.0.1:1: connection refused" in text


def test_credentials_and_a_wrong_password(tmp_path: Path) -> None:
    good = "Basic " + base64.b64encode(b"elastic:changeme").decode()

    def handler(req: Request) -> tuple[int, dict[str, str], bytes]:
        if req.headers.get("authorization") != good:
            body = {
                "error": {"type": "security_exception", "reason": "unable to authenticate user [elastic]"}
            }
            return 401, {"Content-Type": "application/json"}, json.dumps(body).encode()
        info = {"version": {"number": "8.17.0", "build_flavor": "default"}, "tagline": "You Know, for Search"}
        return 200, {"Content-Type": "application/json"}, json.dumps(info).encode()

    with fake_server(handler) as srv:
        rc, text = _run(tmp_path, {"hosts": [srv.host], "username": "elastic", "password": "changeme"})
        assert rc == 0, text
        assert "  talk to server... OK\n  version: 8.17.0\n" in text
        assert srv.requests[-1].headers["authorization"] == good
        rc, text = _run(tmp_path, {"hosts": [srv.host], "username": "elastic", "password": "wrong"})
        assert rc == 1, text
        assert "talk to server... ERROR 401" in text and "unable to authenticate user" in text, text
