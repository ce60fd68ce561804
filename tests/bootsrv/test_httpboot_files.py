"""The boot HTTP serves the TFTP roots' files (UEFI HTTP boot's iPXE) by TFTP's path rules:
nothing outside a root, escaped or not, and no symlink out of one."""

from __future__ import annotations

import os

import pytest

from tests.support.httpboot_lab import ask, serving


@pytest.fixture
def roots(tmp_path):
    root, ipxe, outside = tmp_path / "tftp", tmp_path / "ipxe", tmp_path / "outside"
    for folder in (root, ipxe, outside):
        folder.mkdir()
    (ipxe / "snponly.efi").write_bytes(b"MZ" + bytes(range(256)) * 64)
    (root / "boot.txt").write_text("site file\n")
    (root / "sub").mkdir()
    (root / "sub" / "menu.ipxe").write_text("#!ipxe\n")
    (outside / "secret").write_text("not for clients\n")
    os.symlink(outside / "secret", root / "link-out")
    os.symlink(outside, root / "dir-out")
    os.symlink(root / "boot.txt", root / "link-in")  # stays inside: served
    return [root, ipxe], outside


def test_boot_files_of_the_roots_are_served(roots):
    (root, ipxe), _ = roots
    with serving(lambda path: None, [root, ipxe]) as port:
        status, headers, body = ask(port, "GET", "/snponly.efi")
        assert status == 200 and body == (ipxe / "snponly.efi").read_bytes()
        assert headers["content-length"] == str(len(body))
        assert ask(port, "HEAD", "/snponly.efi")[:3:2] == (200, b"")
        assert ask(port, "GET", "/sub/menu.ipxe")[2] == b"#!ipxe\n"
        assert ask(port, "GET", "/sub%2Fmenu.ipxe")[2] == b"#!ipxe\n"  # escapes decoded
        assert ask(port, "GET", "/link-in")[2] == b"site file\n"
        assert ask(port, "GET", "/snponly.efi", {"Range": "bytes=0-1"})[2] == b"MZ"
        assert ask(port, "DELETE", "/snponly.efi")[0] == 405  # read-only
        assert ask(port, "PUT", "/new.efi")[0] == 405


@pytest.mark.parametrize("path", [
    "/../outside/secret", "/sub/../../outside/secret", "/%2e%2e/outside/secret", "/sub/%2E%2E/%2e%2e/outside/secret",
    "/..%2Foutside%2Fsecret", "//etc/passwd", "/%2Fetc%2Fpasswd", "/etc/passwd",  # absolute: under the root
    "/link-out", "/dir-out/secret", "/boot.txt%00.efi", "/", "/sub", "/missing.efi"])
def test_nothing_outside_the_roots_is_served(roots, path):
    (root, ipxe), _ = roots
    with serving(lambda path: None, [root, ipxe]) as port:
        status, _, body = ask(port, "GET", path)
        assert status == 404 and b"not for clients" not in body
