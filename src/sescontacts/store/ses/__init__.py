"""The ses backend: ``ContactStore`` on Amazon SES v2 (boto3), with a local SQLite mirror for what SES cannot answer.

The modules, one concern each (imports run down this list, never up):

- ``store``: :class:`SesContactStore`, which composes the others.
- ``s3_import``: bulk writes as one SES import job through S3.
- ``suppression``: the account suppression list, written through to SES and read from its mirror.
- ``sync``: keeping the mirror in step with SES (:class:`MirrorSync`), the lists then the suppression list.
- ``suppression_sync``: the suppression list's walks (full, incremental by StartDate, resumable).
- ``mirror``: the mirror's copy of a list, fetched from SES when needed; topic checks against it.
- ``client``: the boto3 client, every call paced, SES's errors mapped to ours.
- ``pacer``: the process-wide request pacer.
- ``sync_schema``: the sync's tables, declared without importing boto3.

This ``__init__`` stays light: :mod:`sescontacts.schema` imports ``sync_schema`` through it, and a data dir on
the local backend must open without loading boto3/botocore. ``SesContactStore`` is therefore loaded when first
asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import SesContactStore


def __getattr__(name: str) -> object:
    if name == "SesContactStore":
        from .store import SesContactStore

        return SesContactStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SesContactStore"]
