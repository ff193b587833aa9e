"""Ingest read files and device events: parse, check, and hand out reads in bounded Arrow batches.

One module per format (:mod:`~streaming.ingest.d0010`, :mod:`~streaming.ingest.hh_csv`,
:mod:`~streaming.ingest.lcl`, :mod:`~streaming.ingest.device`), shared checks and batching in
:mod:`~streaming.ingest.common`, the file-level flow in :mod:`~streaming.ingest.pipeline`.

Run: ``meterlake ingest PATH... --dry-run [--format FORMAT] [--json]``.
"""
from streaming.ingest.common import DEFAULT_BATCH_ROWS, FileRejected
from streaming.ingest.pipeline import FORMATS, FileResult, ValidatedFile, detect, ingest_file, validated_file

__all__ = ["DEFAULT_BATCH_ROWS", "FORMATS", "FileRejected", "FileResult", "ValidatedFile", "detect",
           "ingest_file", "validated_file"]
