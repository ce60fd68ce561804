"""[tftp]: the folder served over TFTP (off when unset)."""

from __future__ import annotations

from pathlib import Path

from bootsrv.config.reader import Section


def parse(top: Section, base: Path) -> Path | None:
    section = top.sub("tftp", "a [tftp] table")
    root = section.get("root", str, "a folder path", None)
    section.done()
    return (base / root).resolve() if root else None
