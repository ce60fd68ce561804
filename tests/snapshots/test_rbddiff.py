"""The rbd export-diff (v1) writer and its check: the records Ceph's rbd-diff.rst describes,
and the damage verify must find. (`rbd import-diff` itself reads these files in
tests/e2e/test_rbd_snapshots.py.)"""

from __future__ import annotations

import struct

from snapshots.rbddiff import HEADER, RbdDiffWriter, check

MiB = 1 << 20


def written(tmp_path, since: str | None = "a") -> bytes:
    path = tmp_path / "d.rbd-diff"
    writer = RbdDiffWriter(path, 8 * MiB, "b", since)
    writer.write(0, b"\x01" * 4096)
    writer.write(MiB, bytes(8192))  # zeros: a 'z' record, no data
    writer.flush()
    writer.close()
    return path.read_bytes()


def test_records_are_laid_out_as_rbd_diff_v1(tmp_path):
    data = written(tmp_path)
    expected = (HEADER + b"f" + struct.pack("<I", 1) + b"a" + b"t" + struct.pack("<I", 1) + b"b"
                + b"s" + struct.pack("<Q", 8 * MiB)
                + b"w" + struct.pack("<QQ", 0, 4096) + b"\x01" * 4096
                + b"z" + struct.pack("<QQ", MiB, 8192) + b"e")
    assert data == expected
    info, findings = check(tmp_path / "d.rbd-diff")
    assert findings == [] and info is not None
    assert (info.from_snap, info.to_snap, info.size, info.data_bytes) == ("a", "b", 8 * MiB, 4096)


def test_a_full_diff_has_no_from_record(tmp_path):
    written(tmp_path, since=None)
    info, findings = check(tmp_path / "d.rbd-diff")
    assert findings == [] and info is not None and info.from_snap is None


def test_damage_is_found(tmp_path):
    path = tmp_path / "d.rbd-diff"
    data = written(tmp_path)
    for damaged, words in ((data[:-1], "end record"), (data[:-100], "cut short"), (data + b"x", "after the end"),
                           (b"rbd diff v2\n" + data[len(HEADER):], "header"),
                           (data.replace(b"z" + struct.pack("<QQ", MiB, 8192), b"z" + struct.pack("<QQ", 8 * MiB, 512)),
                            "past the image's size")):
        path.write_bytes(damaged)
        _, findings = check(path)
        assert findings and words in findings[0], (words, findings)
