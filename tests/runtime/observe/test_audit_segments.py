"""Listing the audit directory: chain order, sizes as listed, a file gone meanwhile."""

from __future__ import annotations

import math
from pathlib import Path

from aivault_ops.runtime.observe.audit_segments import disk_bytes, list_segments


def test_segments_come_in_chain_order_with_their_sizes(tmp_path: Path) -> None:
    (tmp_path / "audit.jsonl").write_bytes(b"a\n")
    (tmp_path / "audit-00000002-20261127T000000Z.jsonl").write_bytes(b"bb\n")
    (tmp_path / "audit-00000001-20261126T000000Z.jsonl.gz").write_bytes(b"ccc\n")
    (tmp_path / "2026-11-25.jsonl").write_bytes(b"dddd\n")
    (tmp_path / "anchor.json").write_bytes(b"{}\n")
    listed = list_segments(tmp_path)
    assert [(s.file_name, s.size) for s in listed] == [
        ("2026-11-25.jsonl", 5),
        ("audit-00000001-20261126T000000Z.jsonl.gz", 4),
        ("audit-00000002-20261127T000000Z.jsonl", 3),
        ("audit.jsonl", 2),
    ]
    assert listed[1].compressed and listed[1].name.endswith(".jsonl")
    assert listed[1].path == tmp_path / "audit-00000001-20261126T000000Z.jsonl.gz"
    assert disk_bytes(tmp_path) == 14


def test_a_file_gone_before_its_size_was_read_stays_listed_without_size_or_age(
    tmp_path: Path,
) -> None:
    # a link to nothing: listed by name, but its size cannot be read (as when another
    # process compressed the file between the listing and the stat)
    (tmp_path / "audit-00000003-20261127T000000Z.jsonl").symlink_to(tmp_path / "gone")
    (segment,) = list_segments(tmp_path)
    assert (segment.size, segment.mtime) == (0, math.inf)
