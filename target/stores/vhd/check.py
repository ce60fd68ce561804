"""`bootsrv disk check`: is this VHD (and its parent chain) sound?"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from target.stores.vhd.format import (
    DIFFERENCING, FIXED, FOOTER_SIZE, HEADER_SIZE, SECTOR, UNALLOCATED, DynamicHeader, Footer, VhdFormatError,
    bat_bytes)
from target.stores.vhd.store import VhdStore, extending_marker, read_footer


@dataclass(slots=True)
class CheckReport:
    path: str
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def check_vhd(path: str | os.PathLike[str]) -> CheckReport:
    report = CheckReport(os.fspath(path))
    try:
        footer = read_footer(path)
    except VhdFormatError as exc:
        report.findings.append(str(exc))
        return report
    size = os.path.getsize(path)
    if footer.disk_type == FIXED:
        if size - FOOTER_SIZE < footer.virtual_size:
            report.findings.append(f"file holds {size - FOOTER_SIZE} bytes of data, footer says {footer.virtual_size}")
        marker = extending_marker(path)
        if marker.exists():  # readable as it is; one sector of the grown space is not yet zeros
            report.notes.append(f"an interrupted `bootsrv disk extend` left {marker.name}; running "
                                "the extend again, or serving the disk, finishes it")
        return report
    with open(path, "rb") as handle:
        head = handle.read(FOOTER_SIZE)
        handle.seek(size - FOOTER_SIZE)
        tail = handle.read(FOOTER_SIZE)
    if head != tail:
        try:
            Footer.unpack(tail, report.path)
            report.findings.append("the footer copy at offset 0 differs from the footer at the end")
        except VhdFormatError:
            report.notes.append("no valid footer at the end (interrupted allocation); the copy at 0 is used")
    try:
        with open(path, "rb") as handle:
            handle.seek(footer.data_offset)
            header = DynamicHeader.unpack(handle.read(HEADER_SIZE), report.path)
    except VhdFormatError as exc:
        report.findings.append(str(exc))
        return report
    _check_layout(report, footer, header, size)
    if footer.disk_type == DIFFERENCING:
        try:
            store = VhdStore(path, readonly=True)
        except VhdFormatError as exc:
            report.findings.append(f"parent chain: {exc}")
            return report
        parent = store.parent
        store.close()
        if parent is not None:
            sub = check_vhd(parent.path)
            report.findings += [f"parent {sub.path}: {f}" for f in sub.findings]
    return report


def _check_layout(report: CheckReport, footer: Footer, header: DynamicHeader, file_size: int) -> None:
    if header.max_table_entries * header.block_size < footer.virtual_size:
        report.findings.append("the BAT does not cover the virtual size")
    metadata = [(0, FOOTER_SIZE), (footer.data_offset, HEADER_SIZE),
                (header.table_offset, bat_bytes(header.max_table_entries))]
    metadata += [(loc.data_offset, max(loc.data_length, 1)) for loc in header.locators]
    data_end = file_size - FOOTER_SIZE
    for start, length in metadata:
        if start + length > data_end + FOOTER_SIZE:
            report.findings.append(f"metadata at {start}+{length} runs past the end of the file")
    with open(report.path, "rb") as handle:
        handle.seek(header.table_offset)
        raw = handle.read(header.max_table_entries * 4)
    extent = header.bitmap_size + header.block_size
    blocks = []
    for index in range(header.max_table_entries):
        entry = int.from_bytes(raw[4 * index:4 * index + 4], "big")
        if entry == UNALLOCATED:
            continue
        start = entry * SECTOR
        if start + header.bitmap_size > data_end:
            report.findings.append(f"block {index} at sector {entry} lies past the end of the data")
            continue
        if start + extent > data_end:
            report.notes.append(f"block {index} is shorter than a block (the file ends inside it)")
        for meta_start, meta_length in metadata:
            if start < meta_start + meta_length and meta_start < start + extent:
                report.findings.append(f"block {index} at sector {entry} overlaps metadata at {meta_start}")
        blocks.append((start, index))
    blocks.sort()
    for (a_start, a_index), (b_start, b_index) in zip(blocks, blocks[1:]):
        if b_start < a_start + extent:
            report.findings.append(f"blocks {a_index} and {b_index} overlap (sectors {a_start // SECTOR}, "
                                   f"{b_start // SECTOR})")
    used = len(blocks) * extent + sum(length for _, length in metadata) + FOOTER_SIZE
    if file_size > used + extent:
        report.notes.append(f"{file_size - used} bytes not used by any block (leaked by a crash or an unmap)")
