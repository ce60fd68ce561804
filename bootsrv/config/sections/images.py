"""[[image]]: the golden VHDs client disks are differencing children of."""

from __future__ import annotations

from pathlib import Path
from bootsrv.config.model import ImageConfig
from bootsrv.config.names import NAME_RE
from bootsrv.config.reader import Section


def parse(top: Section, base: Path) -> tuple[ImageConfig, ...]:
    images: list[ImageConfig] = []
    for section in top.entries("image", "[[image]] tables"):
        name = section.get("name", str, "an image name", required=True)
        if not NAME_RE.match(name) or any(i.name == name for i in images):
            section.fail("name", "a unique name of letters, digits, '.', '_' or '-'", name)
        path = section.get("path", str, "a VHD file path", required=True)
        section.done()
        images.append(ImageConfig(name, (base / path).resolve()))
    return tuple(images)
