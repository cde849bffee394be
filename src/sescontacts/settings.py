"""One settings record, built from command-line flags and ``SESCONTACTS_*`` environment variables.

The CLI declares each option once (flag, env variable, default, help); ``docs/cli.md`` (with its environment
variables section) is generated from those declarations, and a test checks it is current, so it cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = "./sescontacts-data"
DEFAULT_LIST = "contacts"
DEFAULT_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "000000000000"
# The database file in the data dir (Settings.database_path); private_files tightens it and its -wal/-shm.
DATABASE_FILE_NAME = "sescontacts.db"
# How the local SES API reads the updates its sources disagree on (README, "Differences from SES"):
# "observed": as a probe of real SES saw it (UpdateContact merges TopicPreferences by topic name,
# UpdateContactList keeps an omitted Topics or Description); "documented": as the current API reference and
# the botocore model say (omitted preferences, topics and description are removed).
OBSERVED = "observed"
DOCUMENTED = "documented"
SES_SEMANTICS = (OBSERVED, DOCUMENTED)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    host: str = "127.0.0.1"
    port: int = 8000
    region: str = DEFAULT_REGION
    contact_list: str = DEFAULT_LIST
    backend: str = "local"  # "local" or "ses"
    # SES allows one contact list per account and region; None lifts that quota on the local backend.
    max_contact_lists: int | None = 1
    max_upload_bytes: int = 1024 * 1024 * 1024
    # "RATE[:BURST]" requests per second answered before TooManyRequestsException, local backend only.
    throttle: str | None = None
    # Where the local backend's import jobs read s3:// URLs: an S3-compatible endpoint, else a folder.
    s3_endpoint_url: str | None = None
    # OBSERVED or DOCUMENTED: how the local SES API applies UpdateContact and UpdateContactList.
    ses_semantics: str = OBSERVED
    # The ses backend.
    aws_profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    ses_endpoint_url: str | None = None
    ses_rate: float = 1.0
    ses_burst: int = 2
    s3_import_location: str | None = None
    sync_interval_seconds: float = 300.0
    # An SQS queue of SES bounce and complaint events, polled as background work (events/sqs.py).
    events_queue_url: str | None = None
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or networks, "*" for any);
    # empty: forwarded headers are ignored and the peer's address is the client's.
    forwarded_allow_ips: tuple[str, ...] = ()
    # Host names the server answers to (the Host header); empty: derived from ``host`` (see server/hosts.py).
    allowed_hosts: tuple[str, ...] = ()
    # Seconds: to receive a request's line and headers; of silence inside a request body; idle between requests.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    # SNS topics whose messages the events endpoint (POST /events/sns) accepts; empty: the endpoint is off.
    events_sns_topic_arns: tuple[str, ...] = ()
    # Days the contact history is kept (history_retention.py; 0: record nothing); None: as the data dir was last
    # served (commands other than serve leave it).
    history_retention_days: int | None = None

    @property
    def database_path(self) -> Path:
        return self.data_dir / DATABASE_FILE_NAME

    @property
    def s3_folder(self) -> Path:
        """``s3://BUCKET/KEY`` resolves to ``<data dir>/s3/BUCKET/KEY`` on the local backend."""
        return self.data_dir / "s3"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
