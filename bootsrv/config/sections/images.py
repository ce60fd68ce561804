"""[[image]]: the golden VHDs client disks are differencing children of, or the RBD images
(`rbd:POOL/IMAGE`) client disks are clones of."""

from __future__ import annotations

from pathlib import Path
from bootsrv.config.model import ImageConfig
from bootsrv.config.names import NAME_RE
from bootsrv.config.reader import Section
from bootsrv.config.sections.disks import RBD_IMAGE


def parse(top: Section, base: Path) -> tuple[ImageConfig, ...]:
    images: list[ImageConfig] = []
    for section in top.entries("image", "[[image]] tables"):
        name = section.get("name", str, "an image name", required=True)
        if not NAME_RE.match(name) or any(i.name == name for i in images):
            section.fail("name", "a unique name of letters, digits, '.', '_' or '-'", name)
        path = section.get("path", str, 'a VHD file path or "rbd:POOL/IMAGE"', required=True)
        remote = path.startswith("rbd:")  # its versions are RBD snapshots, its clients' disks clones
        if remote and not RBD_IMAGE.match(path):
            section.fail("path", 'an RBD image as "rbd:POOL/IMAGE" (its versions are its snapshots)', path)
        section.done()
        images.append(ImageConfig(name, Path(path) if remote else (base / path).resolve()))
    return tuple(images)
