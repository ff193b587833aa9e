"""The lake's layout as pure functions: file names, the per-date manifest, and which files are live.

docs/lake.md describes the layout for people; this module is the code that defines it. Nothing here touches a
filesystem: listings and manifests come in as values, so the rules are tested on literal data.

A settlement date's directory holds two kinds of data file:

* ``part-<topic>-<partition>-<first>-<last>.parquet``: written by the mirror; the reads of Kafka offsets
  ``first..last`` (inclusive) of that topic partition that fall on this date. The name is deterministic, so
  rewriting a batch after a crash gives the same name (the mirror then skips it).
* ``compacted-<generation>-<k>-<token>.parquet``: written by compaction, live only while the manifest lists it;
  ``token`` is the compaction run's own, so two compactions never write the same name.

The manifest of a date is versioned: every change is a new file ``_manifest/settlement_date=<date>/<version>.json``
(:func:`manifest_version_name`, twelve digits), created under a name no earlier writer used and never overwritten;
the current manifest is the highest version present (:func:`current_manifest`), and older versions are collected
after the grace period. Creating a name is atomic on every store (a rename to a free name on a local disk and on
HDFS, one PUT on S3), so a reader sees the old manifest or the new one and never a gap.
It lists the live compacted files and, per topic partition, the offset up to which mirror files have
been merged into them (``retired_through``): a part file whose ``last`` offset is at or below it is retired.
So live = the manifest's compacted files + part files above the watermark. Anything else (temporary files,
compacted files of an interrupted compaction) is not data.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date

PART_PREFIX = "part-"
COMPACTED_PREFIX = "compacted-"
SUFFIX = ".parquet"
DATE_DIR_PREFIX = "settlement_date="
MANIFEST_DIR = "_manifest"
_COMPACTED_RE = re.compile(r"compacted-(\d+)-(\d+)(?:-[0-9a-f]+)?\.parquet")
_MANIFEST_VERSION_RE = re.compile(r"(\d{12})\.json")
_DATE_DIR_RE = re.compile(r"settlement_date=(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True, order=True)
class PartName:
    """A mirror file's identity: a batch (topic partition, first and last offset) on one settlement date."""

    topic: str
    partition: int
    first: int
    last: int

    @property
    def name(self) -> str:
        return f"{PART_PREFIX}{self.topic}-{self.partition}-{self.first}-{self.last}{SUFFIX}"

    @property
    def topic_partition(self) -> str:
        return tp_key(self.topic, self.partition)


def tp_key(topic: str, partition: int) -> str:
    """The manifest's key for a topic partition: ``<topic>/<partition>`` (a topic name has no ``/``)."""
    return f"{topic}/{partition}"


def part_name(topic: str, partition: int, first: int, last: int) -> str:
    if not 0 <= first <= last or partition < 0:
        raise ValueError(f"bad offset range {first}-{last} of partition {partition}")
    return PartName(topic, partition, first, last).name


def parse_part(name: str) -> PartName | None:
    """The :class:`PartName` of a mirror file name, or None for any other name."""
    if not (name.startswith(PART_PREFIX) and name.endswith(SUFFIX)):
        return None
    fields = name[len(PART_PREFIX):-len(SUFFIX)].rsplit("-", 3)  # a topic name may contain '-'
    if len(fields) != 4 or not fields[0] or not all(f.isdigit() for f in fields[1:]):
        return None
    topic, partition, first, last = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    if first > last:
        return None
    return PartName(topic, partition, first, last)


def compacted_name(generation: int, index: int, token: str = "") -> str:
    """A compacted file's name; ``token`` (hex, one per compaction run) keeps two compactions of the same
    generation from ever writing the same name (names without one are of older lakes)."""
    return f"{COMPACTED_PREFIX}{generation}-{index}{'-' + token if token else ''}{SUFFIX}"


def parse_compacted(name: str) -> tuple[int, int] | None:
    m = _COMPACTED_RE.fullmatch(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def date_dir(day: date) -> str:
    return f"{DATE_DIR_PREFIX}{day.isoformat()}"


def parse_date_dir(name: str) -> date | None:
    m = _DATE_DIR_RE.fullmatch(name)
    if not m:
        return None
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        return None


def manifest_name(day: date) -> str:
    """The single manifest file of lakes written before manifests were versioned (read when no version exists)."""
    return f"{MANIFEST_DIR}/{date_dir(day)}.json"


def manifest_dir(day: date) -> str:
    """The directory of a date's manifest versions."""
    return f"{MANIFEST_DIR}/{date_dir(day)}"


def manifest_version_name(version: int) -> str:
    if version < 1:
        raise ValueError(f"manifest versions start at 1, not {version}")
    return f"{version:012d}.json"


def parse_manifest_version(name: str) -> int | None:
    m = _MANIFEST_VERSION_RE.fullmatch(name)
    return int(m.group(1)) if m else None


def current_manifest(names: list[str]) -> str | None:
    """Of a manifest directory's listing, the current manifest: the highest version (temporary and other names
    ignored), or None."""
    versions = [(v, n) for n in names if (v := parse_manifest_version(n)) is not None]
    return max(versions)[1] if versions else None


def collectable_manifests(names: list[str], current: int) -> list[str]:
    """Manifest versions below ``current``: superseded, to be deleted once no reader can still be opening them."""
    return sorted(n for n in names if (v := parse_manifest_version(n)) is not None and v < current)


def temporary_name(name: str, token: str) -> str:
    """A name in the same directory that no reader takes for data (hidden, not ``.parquet``)."""
    return f".{name}.{token}.tmp"


@dataclass
class Manifest:
    """The compaction state of one settlement date. ``generation`` 0 means never compacted; ``version`` is the
    manifest file's (0: none yet, or the unversioned file of an older lake)."""

    settlement_date: date
    generation: int = 0
    compacted: list[dict] = field(default_factory=list)  # {"name", "rows", "bytes"}
    retired_through: dict[str, int] = field(default_factory=dict)  # tp_key -> last offset merged
    pending_delete: list[dict] = field(default_factory=list)  # {"name", "retired_at"} (epoch seconds)
    superseded: int = 0  # rows of the compacted files beyond the latest of each read (kept for settlement runs)
    version: int = 0

    @property
    def compacted_names(self) -> list[str]:
        return [c["name"] for c in self.compacted]

    def is_retired(self, part: PartName) -> bool:
        return part.last <= self.retired_through.get(part.topic_partition, -1)

    def to_json(self) -> str:
        return json.dumps({"settlement_date": self.settlement_date.isoformat(), "generation": self.generation,
                           "compacted": self.compacted, "retired_through": self.retired_through,
                           "pending_delete": self.pending_delete, "superseded": self.superseded,
                           "version": self.version},
                          indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        return cls(date.fromisoformat(data["settlement_date"]), int(data["generation"]), list(data["compacted"]),
                   {k: int(v) for k, v in data["retired_through"].items()}, list(data["pending_delete"]),
                   int(data.get("superseded", 0)),  # absent: written when compaction kept only the latest
                   int(data.get("version", 0)))  # absent: the unversioned manifest of an older lake

    def successor(self, **changes) -> Manifest:
        """The next version of this manifest with ``changes``."""
        from dataclasses import replace

        return replace(self, version=self.version + 1, **changes)


def live_files(names: list[str], manifest: Manifest) -> list[str]:
    """The live data files of a date directory listing ``names``: the manifest's compacted files, then the part
    files above its watermarks (in topic, partition, offset order).

    Raises ValueError if a compacted file the manifest lists is missing (the lake is damaged).
    """
    present = set(names)
    missing = [n for n in manifest.compacted_names if n not in present]
    if missing:
        raise ValueError(f"{manifest.settlement_date}: manifest generation {manifest.generation} lists "
                         f"missing files {missing}")
    parts = sorted(p for p in map(parse_part, names) if p is not None and not manifest.is_retired(p))
    return manifest.compacted_names + [p.name for p in parts]


def retire(manifest: Manifest, inputs: list[str], outputs: list[dict], now: float, superseded: int = 0) -> Manifest:
    """The manifest after a compaction that merged the live files ``inputs`` into ``outputs`` (of which
    ``superseded`` rows are superseded versions kept for settlement runs).

    Part inputs raise their topic partition's watermark to their highest ``last`` offset (the mirror writes a
    partition's batches in order, so every part file of that partition up to it was an input); inputs (parts and
    earlier compacted files) are queued for deletion after the grace period.
    """
    through = dict(manifest.retired_through)
    for part in filter(None, map(parse_part, inputs)):
        through[part.topic_partition] = max(through.get(part.topic_partition, -1), part.last)
    pending = manifest.pending_delete + [{"name": n, "retired_at": now} for n in inputs]
    return manifest.successor(generation=manifest.generation + 1, compacted=outputs, retired_through=through,
                              pending_delete=pending, superseded=superseded)
