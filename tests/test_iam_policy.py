"""``sescontacts iam-policy``: valid IAM policy grammar, S3 scoped to the import location, and enough for the
ses backend's import job and no more, checked where IAM is enforced (moto with IAM enforcement on, as S3).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from sescontacts.cli import main
from sescontacts.model import ContactPatch, Outcome, Topic, UpsertPolicy
from sescontacts.store.ses.pacer import Pacer
from sescontacts.store.ses.s3_import import upload_key_prefix

from .support.server import REGION, run_server
from .support.ses import clean_env, run_moto, ses_store

STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}
ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9]+")
SID = re.compile(r"[A-Za-z0-9]+")


def policy(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["iam-policy", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def check_grammar(document: dict[str, Any]) -> None:
    """The IAM policy grammar's rules a generated policy could break."""
    assert set(document) == {"Version", "Statement"} and document["Version"] == "2012-10-17"
    statements = document["Statement"]
    assert isinstance(statements, list) and statements
    sids = [s["Sid"] for s in statements]
    assert len(sids) == len(set(sids)) and all(SID.fullmatch(sid) for sid in sids)
    for statement in statements:
        assert set(statement) <= STATEMENT_KEYS and {"Effect", "Action", "Resource"} <= set(statement)
        assert statement["Effect"] in ("Allow", "Deny")
        assert all(ACTION.fullmatch(a) for a in listed(statement["Action"])), statement
        assert all(r == "*" or r.startswith("arn:aws:") for r in listed(statement["Resource"])), statement
        for operator, keys in statement.get("Condition", {}).items():
            assert operator in ("StringEquals", "StringLike") and isinstance(keys, dict)
            assert all(isinstance(v, (str, list)) for v in keys.values())


def s3_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in document["Statement"] if any(a.startswith("s3:") for a in listed(s["Action"]))]


@pytest.mark.parametrize(
    ("location", "key_prefix"),
    [
        ("s3://my-bucket/imports/", "imports/sescontacts-import-"),
        ("s3://my-bucket/imports", "imports/sescontacts-import-"),  # not imports-old/...: the slash is added
        ("s3://my-bucket/a/b/", "a/b/sescontacts-import-"),
        ("s3://my-bucket", "sescontacts-import-"),
    ],
)
def test_s3_statements_are_scoped_to_the_import_location(location: str, key_prefix: str) -> None:
    document = policy("--s3-import-location", location, "--account", "123456789012")
    check_grammar(document)
    objects, bucket = s3_statements(document)
    assert objects["Action"] == ["s3:PutObject", "s3:DeleteObject"]
    assert objects["Resource"] == f"arn:aws:s3:::my-bucket/{key_prefix}*"
    assert bucket["Action"] == ["s3:ListBucket"] and bucket["Resource"] == "arn:aws:s3:::my-bucket"
    assert bucket["Condition"] == {"StringLike": {"s3:prefix": [f"{key_prefix}*"]}}
    # The keys an import uploads are exactly the ones allowed.
    uploads_bucket, uploads_prefix = upload_key_prefix(location)
    assert (uploads_bucket, uploads_prefix) == ("my-bucket", key_prefix)
    assert fnmatch.fnmatchcase(f"arn:aws:s3:::my-bucket/{uploads_prefix}0a16a755.jsonl", objects["Resource"])


def test_every_generated_policy_is_valid_grammar() -> None:
    for args in ([], ["--feature", "contacts"], ["--s3-import-location", "s3://b-1/x/"], ["--account", "123456789012"]):
        document = policy(*args)
        check_grammar(document)
        assert all(s["Resource"] != "*" for s in s3_statements(document))


# -- the policy where IAM is enforced: moto as S3 (and IAM), our server as SES ------------------------------

# moto answers the first N requests without checking any signature or policy: the setup below, exactly.
SETUP_REQUESTS = 7


@pytest.fixture(scope="module")
def enforced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """moto enforcing IAM, holding bucket ``imports`` and two users: ``sescontacts`` with the policy
    ``iam-policy`` prints, and ``ses`` standing in for SES's service principal (s3:GetObject on the uploads,
    what the bucket policy would grant it); our server as SES, reading the files as ``ses``."""
    clean_env()
    location = "s3://imports/uploads/"
    document = policy("--s3-import-location", location, "--feature", "import-jobs")
    with run_moto({"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}) as moto_url:
        admin: dict[str, Any] = {
            "region_name": REGION,
            "endpoint_url": moto_url,
            "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup",
        }
        boto3.client("s3", **admin).create_bucket(Bucket="imports")  # 1
        iam = boto3.client("iam", **admin)
        keys = {}
        reader = {"Version": "2012-10-17", "Statement": [document["Statement"][0] | {"Action": ["s3:GetObject"]}]}
        for user, granted in (("sescontacts", document), ("ses", reader)):
            iam.create_user(UserName=user)  # 2, 5
            # moto validates the grammar here, as IAM does: a malformed policy is refused.
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(granted))  # 3, 6
            key = iam.create_access_key(UserName=user)["AccessKey"]  # 4, 7
            keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        server_env = {
            "SESCONTACTS_ACCESS_KEY_ID": keys["sescontacts"][0],  # one session signs SES and S3 calls alike
            "SESCONTACTS_SECRET_ACCESS_KEY": keys["sescontacts"][1],
            "SESCONTACTS_S3_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": keys["ses"][0],
            "AWS_SECRET_ACCESS_KEY": keys["ses"][1],
        }
        with run_server(tmp_path_factory.mktemp("iam-ses"), extra_env=server_env) as server:
            yield {"server": server, "moto": moto_url, "keys": keys, "location": location}


def test_the_import_job_needs_nothing_more_than_the_policy(enforced: dict[str, Any], tmp_path: Path) -> None:
    store = ses_store(
        tmp_path / "mirror.db",
        enforced["server"].url,
        key=enforced["keys"]["sescontacts"],
        pacer=Pacer(1000, 100),
        s3_import_location=enforced["location"],
        s3_endpoint_url=enforced["moto"],
    )
    store.import_poll_interval = 0.05
    try:
        for existing in store.list_lists().items:
            store.delete_list(existing.name)
        store.create_list("contacts", topics=[Topic("news", "News")])
        patches = [ContactPatch(f"p{i:03d}@example.com", attributes={"i": i}) for i in range(60)]
        results = store.upsert_contacts("contacts", patches, UpsertPolicy())
        assert store.calls["create_import_job"] == 1  # the S3 path, not row by row
        assert [r.outcome for r in results] == [Outcome.CREATED] * 60
    finally:
        store.close()


@pytest.mark.parametrize("key", ["uploads/other.csv", "elsewhere/sescontacts-import-1.jsonl", "uploads"])
def test_the_policy_allows_no_other_key(enforced: dict[str, Any], key: str) -> None:
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=enforced["moto"],
        aws_access_key_id=enforced["keys"]["sescontacts"][0],
        aws_secret_access_key=enforced["keys"]["sescontacts"][1],
    )
    s3.put_object(Bucket="imports", Key="uploads/sescontacts-import-probe.jsonl", Body=b"{}")
    s3.delete_object(Bucket="imports", Key="uploads/sescontacts-import-probe.jsonl")
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.put_object(Bucket="imports", Key=key, Body=b"{}")
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.get_object(Bucket="imports", Key="uploads/sescontacts-import-probe.jsonl")  # SES reads, we never do


def test_doctor_checks_the_location_with_what_the_policy_allows(enforced: dict[str, Any], tmp_path: Path) -> None:
    """ListBucket on the bucket is enough for doctor's check. moto does not evaluate the s3:prefix condition:
    that doctor lists exactly the allowed prefix rests on both using ``upload_key_prefix`` (tested above)."""
    key_id, secret = enforced["keys"]["sescontacts"]
    env = {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_CONFIG_FILE": "/dev/null"}
    args = ["doctor", "--data-dir", str(tmp_path / "d"), "--endpoint-url", enforced["server"].url, "--ses-rate", "500"]
    args += ["--s3-import-location", enforced["location"], "--s3-endpoint-url", enforced["moto"], "--yes"]
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert f"ok    S3 location {enforced['location']} is reachable" in result.output, result.output
