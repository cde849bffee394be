"""The SQS poller against ``moto_server``'s SQS (a real HTTP server, an SQS we did not write): long polling,
delete only after the commit, poison messages kept aside, and a poller killed with SIGKILL in the middle of a
drain, then restarted, losing and doubling nothing. Also the rules acting on the ses backend (moto as SES)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sescontacts.db import Database
from sescontacts.events.ingest import EventIngest
from sescontacts.events.log import EventLog
from sescontacts.events.sqs import EventQueue, sqs_client
from sescontacts.model import Contact
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.services import Services
from sescontacts.settings import Settings
from sescontacts.store.sqlite import SqliteContactStore
from tests.support.ses import MOTO_KEY, boto_session, run_moto, ses_store

FIXTURES = Path(__file__).parent / "fixtures" / "ses-events"
SRC = Path(__file__).parent.parent / "src"


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with run_moto() as url:
        yield url


@pytest.fixture
def sqs(moto: str) -> Any:
    return boto_session(MOTO_KEY).client("sqs", endpoint_url=moto)  # type: ignore[attr-defined]


def new_queue(sqs: Any, name: str, visibility: int = 1) -> str:
    return str(sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"])


def bounce_record(email: str, n: int) -> dict[str, Any]:
    record = json.loads((FIXTURES / "bounce-event.json").read_text())
    record["bounce"]["feedbackId"] = f"feedback-{n}"
    record["bounce"]["bouncedRecipients"] = [{"emailAddress": email, "status": "5.1.1", "action": "failed"}]
    return record


def as_sns(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "m",
        "TopicArn": "arn:aws:sns:us-east-1:1:t",
        "Message": json.dumps(record),
    }


def as_eventbridge(record: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0", "detail-type": "Email Bounced", "source": "aws.ses", "detail": record}


def send_all(sqs: Any, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[start : start + 10])]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def in_queue(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteContactStore]:
    store = SqliteContactStore(Database(tmp_path / "sescontacts.db", PRODUCT_SCHEMA), max_lists=None)  # a data dir
    store.create_list("news")
    yield store
    store.close()


def test_every_carrier_is_recorded_and_only_then_deleted(sqs: Any, store: SqliteContactStore) -> None:
    url = new_queue(sqs, "carriers")
    store.create_contact("news", Contact("raw@example.com"))
    bodies = [
        json.dumps(bounce_record("raw@example.com", 1)),
        json.dumps(as_sns(bounce_record("sns@example.com", 2))),
        json.dumps(as_eventbridge(bounce_record("bridge@example.com", 3))),
        (FIXTURES / "open-event.json").read_text(),
        '{"eventType": "Bounce", "mail": {}}',  # poison: no bounce object
        "not json at all",
    ]
    send_all(sqs, url, bodies)
    queue = EventQueue(
        EventIngest(store.db, store), url, sqs_client(url, session=boto_session(MOTO_KEY)), wait_seconds=1
    )
    result = queue.drain()
    assert (result.messages, result.poison, dict(result.skipped)) == (6, 2, {"Open": 1})
    assert (result.ingest.recorded, result.ingest.unsubscribed) == (3, 1)
    assert store.get_contact("news", "raw@example.com").unsubscribe_all
    log = EventLog(store.db)
    poison = sorted((reason, body) for _, _, source, reason, body in log.poison())
    assert poison == [("mail.messageId: missing", bodies[4]), (poison[1][0], "not json at all")]
    assert poison[1][0].startswith("not JSON")
    assert in_queue(sqs, url) == 0
    from click.testing import CliRunner

    from sescontacts.cli import main

    shown = CliRunner().invoke(main, ["events", "unreadable", "--data-dir", str(store.db.path.parent)])
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [(line["reason"][:8], line["body"], line["source"]) for line in lines] == [
        ("not JSON", "not json at all", "sqs"), ("mail.mes", bodies[4], "sqs"),
    ]  # fmt: skip


class _Broken(SqliteContactStore):
    """A store whose writes fail (the database full, say): the event's transaction rolls back."""

    def upsert_contacts(self, *args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("database or disk is full")


def test_a_message_whose_record_failed_is_not_deleted(sqs: Any, tmp_path: Path) -> None:
    url = new_queue(sqs, "failing")
    send_all(sqs, url, [json.dumps(bounce_record("x@example.com", 1))])
    db = Database(tmp_path / "b.db", PRODUCT_SCHEMA)
    broken = _Broken(db, max_lists=None)
    broken.create_list("news")
    client = sqs_client(url, session=boto_session(MOTO_KEY))
    with pytest.raises(sqlite3.OperationalError):
        EventQueue(EventIngest(db, broken), url, client, wait_seconds=1).receive()
    assert EventLog(db).event_count() == 0  # rolled back with the failed action
    assert in_queue(sqs, url) == 1  # in flight, not deleted: it comes back
    working = SqliteContactStore(db, max_lists=None)
    result = EventQueue(EventIngest(db, working), url, client, wait_seconds=1).drain()
    assert (result.messages, result.ingest.recorded) == (1, 1)
    assert in_queue(sqs, url) == 0
    db.close()


def _count(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        return int(conn.execute("SELECT count(*) FROM delivery_events").fetchone()[0])
    except sqlite3.OperationalError:  # the tables are being created
        return 0
    finally:
        conn.close()


def test_a_poller_killed_mid_drain_then_restarted_loses_and_doubles_nothing(sqs: Any, tmp_path: Path) -> None:
    url = new_queue(sqs, "killed", visibility=2)
    total = 300  # moto's SQS answers a receive in ~0.25 s here: a drain of 30 receives
    send_all(sqs, url, [json.dumps(bounce_record(f"user{n}@example.com", n)) for n in range(total)])
    data = tmp_path / "data"
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "AWS_ACCESS_KEY_ID": MOTO_KEY[0],
        "AWS_SECRET_ACCESS_KEY": MOTO_KEY[1],
    }
    command = [sys.executable, "-m", "sescontacts", "events", "poll", "--queue-url", url, "--data-dir", str(data)]
    poller = subprocess.Popen(
        [*command, "--wait-seconds", "0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while (seen := _count(data / "sescontacts.db")) < 30:  # polled, not slept for: kill once it is draining
            assert poller.poll() is None and time.monotonic() < deadline
        poller.send_signal(signal.SIGKILL)
        poller.wait(timeout=10)
    finally:
        if poller.poll() is None:
            poller.kill()
    at_kill = _count(data / "sescontacts.db")
    assert seen <= at_kill < total and in_queue(sqs, url) > 0  # really killed in the middle
    rerun = subprocess.run(
        [*command, "--once", "--wait-seconds", "0"], env=env, capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stderr
    assert _count(data / "sescontacts.db") == total
    assert in_queue(sqs, url) == 0
    assert f"{total - at_kill:,} bounces and complaints recorded" in rerun.stdout


def test_serve_polls_the_queue_as_background_work(sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", MOTO_KEY[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MOTO_KEY[1])
    url = new_queue(sqs, "served")
    send_all(sqs, url, [json.dumps(bounce_record(f"s{n}@example.com", n)) for n in range(25)])
    services = Services.open(Settings(data_dir=tmp_path / "srv", events_queue_url=url))
    services.start()
    from sescontacts.cli.serve import banner

    assert f"  SES events:   polling {url}" in banner(services, list_created=False)
    try:
        deadline = time.monotonic() + 60
        while services.events.log.event_count() < 25:
            assert time.monotonic() < deadline
            time.sleep(0.05)  # polling interval while the background thread drains
    finally:
        services.close()
    assert in_queue(sqs, url) == 0


def test_rules_act_on_the_ses_backend(moto: str, tmp_path: Path) -> None:
    store = ses_store(tmp_path / "m.db", moto, key=MOTO_KEY)
    store.create_list("news")
    store.create_contact("news", Contact("gone@example.com"))
    record = bounce_record("gone@example.com", 7)
    from sescontacts.events.parse import parse_document

    result = EventIngest(store.mirror.db, store).ingest(parse_document(record).events, source="file")
    assert (result.recorded, result.unsubscribed) == (1, 1)
    assert store.get_contact("news", "gone@example.com").unsubscribe_all
    client = boto_session(MOTO_KEY).client("sesv2", endpoint_url=moto)  # type: ignore[attr-defined]
    assert client.get_contact(ContactListName="news", EmailAddress="gone@example.com")["UnsubscribeAll"] is True
    store.close()


def test_the_iam_policy_is_enough_to_poll_and_nothing_is_deleted_without_it(tmp_path: Path) -> None:
    """moto enforcing IAM (after the setup's requests): a user holding exactly what ``iam-policy`` prints for the
    events queue drains it; one without sqs:DeleteMessage is refused, and its message stays in the queue."""
    from click.testing import CliRunner

    from sescontacts.cli import main

    setup = 8  # create_queue, send_message_batch, then create_user, put_user_policy, create_access_key twice
    with run_moto({"INITIAL_NO_AUTH_ACTION_COUNT": str(setup)}) as url:
        admin = boto_session(("setup", "setup"))
        sqs = admin.client("sqs", endpoint_url=url)  # type: ignore[attr-defined]
        queue = new_queue(sqs, "guarded")  # 1
        send_all(sqs, queue, [json.dumps(bounce_record(f"g{n}@example.com", n)) for n in range(3)])  # 2
        printed = CliRunner().invoke(main, ["iam-policy", "--events-queue-url", queue, "--account", "123456789012"])
        document = json.loads(printed.stdout)
        granted = {
            "Version": "2012-10-17",
            "Statement": [s for s in document["Statement"] if s["Sid"] == "EventsQueue"],
        }
        assert granted["Statement"][0]["Resource"] == "arn:aws:sqs:us-east-1:123456789012:guarded"
        assert granted["Statement"][0]["Action"] == [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ]
        crippled = json.loads(json.dumps(granted))
        crippled["Statement"][0]["Action"].remove("sqs:DeleteMessage")
        # SQS grants DeleteMessageBatch with sqs:DeleteMessage (its guide, "Amazon SQS batch actions"); moto asks
        # for the batch action by name (docs/ses-fidelity.md): added for moto only, never printed.
        granted["Statement"][0]["Action"].append("sqs:DeleteMessageBatch")
        iam = admin.client("iam", endpoint_url=url)  # type: ignore[attr-defined]
        keys = {}
        for user, policy in (("poller", granted), ("crippled", crippled)):
            iam.create_user(UserName=user)  # 3, 6
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))  # 4, 7
            key = iam.create_access_key(UserName=user)["AccessKey"]  # 5, 8
            keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        store = SqliteContactStore(Database(tmp_path / "g.db", PRODUCT_SCHEMA), max_lists=None)
        ingest = EventIngest(store.db, store)
        weak = EventQueue(ingest, queue, sqs_client(queue, session=boto_session(keys["crippled"])), wait_seconds=0)
        from botocore.exceptions import ClientError

        with pytest.raises(ClientError, match="AccessDenied"):
            weak.receive()  # received and recorded, then the delete is refused: the messages come back
        strong = EventQueue(ingest, queue, sqs_client(queue, session=boto_session(keys["poller"])), wait_seconds=0)
        result = strong.drain()
        assert result.messages == 3 and ingest.log.event_count() == 3
        assert strong.queue_empty()
        store.close()


@pytest.mark.parametrize("raw", [False, True])
def test_events_published_to_sns_reach_the_poller_through_its_subscription(
    moto: str, sqs: Any, store: SqliteContactStore, raw: bool
) -> None:
    """SES -> SNS -> SQS as the README wires it, with moto's SNS making the envelope (or raw delivery not)."""
    url = new_queue(sqs, f"from-sns-{raw}")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns = boto_session(MOTO_KEY).client("sns", endpoint_url=moto)  # type: ignore[attr-defined]
    topic = sns.create_topic(Name=f"ses-events-{raw}")["TopicArn"]
    attributes = {"RawMessageDelivery": "true"} if raw else {}
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    sns.publish(TopicArn=topic, Message=json.dumps(bounce_record("via-sns@example.com", 1)))
    sns.publish(TopicArn=topic, Message=(FIXTURES / "complaint-notification.json").read_text())
    queue = EventQueue(
        EventIngest(store.db, store), url, sqs_client(url, session=boto_session(MOTO_KEY)), wait_seconds=0
    )
    result = queue.drain()
    assert (result.messages, result.poison, result.ingest.recorded) == (2, 0, 2)
    assert [h.event.kind for h in EventLog(store.db).history("via-sns@example.com")] == ["BOUNCE"]
    assert EventLog(store.db).marks(["spam-clicker@example.net"])["spam-clicker@example.net"].complained_at


def test_poll_once_on_a_queue_that_does_not_exist_says_so_in_one_line(moto: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sescontacts.cli import main

    url = f"{moto}/123456789012/no-such-queue"
    env = {"AWS_ACCESS_KEY_ID": MOTO_KEY[0], "AWS_SECRET_ACCESS_KEY": MOTO_KEY[1]}
    args = ["events", "poll", "--queue-url", url, "--once", "--wait-seconds", "0", "--data-dir", str(tmp_path / "d")]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {url}: An error occurred (") and "NonExistentQueue" in result.stderr
    assert "Traceback" not in result.output
