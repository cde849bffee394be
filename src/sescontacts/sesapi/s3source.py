"""Where the local CreateImportJob reads ``s3://BUCKET/KEY``: an S3-compatible endpoint when one is configured.

This module owns source resolution: :data:`source_opener` (the hook ``import_job_operations`` calls, which a
test or a later backend may replace), the endpoint download and the data directory's folder. It imports
nothing from the operations module, so the two form no circle.

With ``--s3-endpoint-url`` (``Settings.s3_endpoint_url``: MinIO, moto's S3 server in the tests, or AWS itself)
the object is downloaded once into ``<data dir>/s3-downloads/`` and the job reads that copy (it reads the file
twice: a check, then the rows). Without it, ``<data dir>/s3/BUCKET/KEY`` is read as before, so nothing changes
for people who never set an endpoint. Credentials come from boto3's standard chain, like everything else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from ..private_files import make_private_dir, open_private

_NAME_CHARS = 48  # at most 4 bytes a character in UTF-8: digest + "-" + 192 + ".part" < 255 bytes

# (settings, bucket, key) -> a local file the job reads. It must not copy more than it has to: the job
# reads the file twice (a check, then the rows) and keeps it until it is final.
SourceOpener = Callable[[Any, str, str], Path]


def local_folder_source(settings: Any, bucket: str, key: str) -> Path:
    """``s3://BUCKET/KEY`` -> ``<data dir>/s3/BUCKET/KEY``; refuses keys that climb out of the folder."""
    root = Path(settings.s3_folder).resolve()
    try:
        path = (root / bucket / key).resolve()
    except (OSError, ValueError):  # a name the file system cannot hold (too long, a loop of links...)
        raise BadRequest(f"Invalid S3Url: s3://{bucket}/{key}", field="S3Url") from None
    if root not in path.parents:
        raise BadRequest(f"Invalid S3Url: s3://{bucket}/{key}", field="S3Url")
    return path


def download_source(settings: Any, bucket: str, key: str) -> Path:
    """Fetch ``s3://bucket/key`` from ``settings.s3_endpoint_url`` to a local file; SES-style errors."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    folder = Path(settings.data_dir) / "s3-downloads"
    make_private_dir(folder)
    digest = hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:24]
    # The digest names the object; the key's last segment (S3 allows 1024 bytes) is kept short enough for a
    # file name (255 bytes), only to make the folder readable.
    target = folder / f"{digest}-{(Path(key).name or 'object')[-_NAME_CHARS:]}"
    partial = target.with_suffix(target.suffix + ".part")
    client = boto3.client("s3", region_name=settings.region, endpoint_url=settings.s3_endpoint_url)
    try:
        with open_private(partial, new=False) as out:  # 0600: boto3's download_file would follow the umask
            client.download_fileobj(bucket, key, out)
    except ClientError as exc:
        partial.unlink(missing_ok=True)
        message = exc.response.get("Error", {}).get("Message") or str(exc)
        raise BadRequest(f"Could not read s3://{bucket}/{key}: {message}", field="S3Url") from None
    except BotoCoreError as exc:
        partial.unlink(missing_ok=True)
        raise BadRequest(f"Could not read s3://{bucket}/{key}: {exc}", field="S3Url") from None
    partial.replace(target)
    return target


def endpoint_or_folder_source(settings: Any, bucket: str, key: str) -> Path:
    """The import jobs' source opener: the S3 endpoint when configured, else the data directory's folder."""
    if getattr(settings, "s3_endpoint_url", None):
        return download_source(settings, bucket, key)
    return local_folder_source(settings, bucket, key)


source_opener: SourceOpener = endpoint_or_folder_source
