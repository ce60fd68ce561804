"""The boot HTTP that serves installer ISOs to iPXE: Range replies as RFC 9110 says, only
the files it is told about, and nothing that grows with what a client asks."""

from __future__ import annotations

import pytest

from bootsrv.httpboot import Span, span
from tests.support.httpboot_lab import ask, serving


@pytest.mark.parametrize("header, expected", [
    (None, Span(200, 0, 1000)),
    ("bytes=0-511", Span(206, 0, 512)),
    ("bytes=512-", Span(206, 512, 488)),
    ("bytes=-100", Span(206, 900, 100)),
    ("bytes=900-5000", Span(206, 900, 100)),  # past the end: up to the end
    ("bytes=1000-1100", Span(416)),
    ("bytes=-0", Span(416)),
    ("bytes=5-2", Span(200, 0, 1000)),  # invalid: ignored, the whole file
    ("items=0-1", Span(200, 0, 1000)),
    ("bytes=0-1,5-6", Span(200, 0, 1000)),  # several ranges: not offered, the whole file
])
def test_range_replies(header, expected):
    assert span(header, 1000) == expected


@pytest.fixture
def served(tmp_path):
    iso = tmp_path / "installer.iso"
    iso.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    with serving(lambda path: iso if path == "/install/golden.iso" else None, []) as port:
        yield port, iso.read_bytes()


def test_ranges_of_the_iso_read_back_as_its_bytes(served):
    port, content = served
    status, headers, body = ask(port, "GET", "/install/golden.iso", {"Range": "bytes=4096-8191"})
    assert status == 206 and body == content[4096:8192]
    assert headers["content-range"] == f"bytes 4096-8191/{len(content)}" and headers["accept-ranges"] == "bytes"
    status, headers, body = ask(port, "HEAD", "/install/golden.iso")
    assert status == 200 and headers["content-length"] == str(len(content)) and body == b""
    assert ask(port, "GET", "/install/golden.iso")[2] == content
    status, headers, _ = ask(port, "GET", "/install/golden.iso", {"Range": f"bytes={len(content)}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(content)}"


def test_nothing_else_is_served(served):
    port, _ = served
    for path in ("/install/other.iso", "/", "/install/../etc/passwd", "/install/golden.iso/../../x"):
        assert ask(port, "GET", path)[0] == 404
    assert ask(port, "POST", "/install/golden.iso")[0] == 405
