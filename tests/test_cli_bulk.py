"""``sescontacts import / export / jobs``: exit statuses, messages, standard input, dry runs, rejects files,
the default list, round trips through export, and the progress line on a terminal."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sescontacts.bulk.job_manager import ImportOptions
from sescontacts.cli import main
from sescontacts.cli.bulk import _ProgressLine
from sescontacts.history import Actor
from sescontacts.model import Topic
from sescontacts.services import Services
from sescontacts.settings import Settings
from tests.support.modes import mode, usual_umask

FIXTURES = Path(__file__).parent / "fixtures"


def run(data_dir: Path, *args: str, stdin: bytes | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(main, [*args, "--data-dir", str(data_dir)], input=stdin, catch_exceptions=False)


def contacts(data_dir: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(data_dir / "sescontacts.db")
    try:
        return conn.execute("SELECT email, unsubscribe_all, attributes FROM contacts ORDER BY email_key").fetchall()
    finally:
        conn.close()


def test_import_the_page_examples(tmp_path: Path) -> None:
    result = run(tmp_path, "import", str(FIXTURES / "page-example.csv"))
    assert result.exit_code == 0, result.output
    assert "imported into contacts: 2 rows" in result.stdout and "created 2" in result.stdout
    result = run(tmp_path, "import", str(FIXTURES / "page-example.json"))
    assert result.exit_code == 0
    assert "line 8: trailing comma before '}' ignored" in result.stderr
    assert contacts(tmp_path) == [
        ("jane.smith@example.com", 1, '{"Name":"Jane","Company":null}'),
        ("john.deo@example.com", 0, '{"Name":"John"}'),
        ("john.doe@example.com", 0, '{"Name":"John","Company":"ACM Inc"}'),
    ]


def test_rejected_rows_exit_1_and_go_to_the_rejects_file(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("emailAddress,unsubscribeAll\nok@example.com,false\nnope,true\n")
    rejects = tmp_path / "rejects.csv"
    result = run(tmp_path / "d", "import", str(source), "--rejects", str(rejects))
    assert result.exit_code == 1
    assert "1 rejected rows" in result.stderr and "line 3: nope: emailAddress: there is no @" in result.stderr
    assert rejects.read_text() == "line,emailAddress,column,reason\n3,nope,emailAddress,there is no @\n"


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_a_file_read_to_the_end_whose_every_row_is_rejected_exits_1(tmp_path: Path, dry_run: list[str]) -> None:
    """Status 2 is for usage and file-level errors; a file read to the end with rejected rows is 1, however many."""
    only_rejects = tmp_path / "bad-rows.csv"
    only_rejects.write_text("emailAddress\nnope\nstill-nope\n")
    result = run(tmp_path / "d", "import", str(only_rejects), *dry_run)
    assert result.exit_code == 1, result.output
    assert "2 rejected rows" in result.stderr and "line 3: still-nope: emailAddress: there is no @" in result.stderr


def test_usage_and_file_level_errors_exit_2(tmp_path: Path) -> None:
    binary = tmp_path / "pic.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    result = run(tmp_path / "d", "import", str(binary))
    assert result.exit_code == 2 and f"{binary}:1:1: the file looks like UTF-16 text or binary data" in result.stderr
    assert run(tmp_path / "d", "import", str(tmp_path / "missing.csv")).exit_code == 2
    result = run(tmp_path / "d", "import", str(FIXTURES / "page-example.csv"), "--contact-list", "other")
    assert result.exit_code == 2 and "List with name: other doesn't exist." in result.stderr
    assert contacts(tmp_path / "d") == []


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = run(tmp_path, "import", str(FIXTURES / "page-example.csv"), "--dry-run")
    assert result.exit_code == 0 and "dry run, nothing written: 2 rows: created 2" in result.stdout
    assert contacts(tmp_path) == []


def test_standard_input_and_format_from_content(tmp_path: Path) -> None:
    data = b'{"emailAddress": "a@example.com", "unsubscribeAll": true}\n{"emailAddress": "b@example.com"}\n'
    result = run(tmp_path, "import", "-", stdin=data)
    assert result.exit_code == 0, result.output
    assert [c[0] for c in contacts(tmp_path)] == ["a@example.com", "b@example.com"]
    assert list((tmp_path / "uploads").iterdir()) == []  # the spooled copy is gone once the job completed


def test_delete_action(tmp_path: Path) -> None:
    run(tmp_path, "import", str(FIXTURES / "page-example.csv"))
    result = run(tmp_path, "import", "-", "--action", "delete", stdin=b"emailAddress\njohn.doe@example.com\nx@y.com\n")
    assert result.exit_code == 0 and "deleted 1, not found 1" in result.stdout
    assert [c[0] for c in contacts(tmp_path)] == ["jane.smith@example.com"]


def test_the_only_list_is_the_default(tmp_path: Path) -> None:
    services = Services.open(Settings(data_dir=tmp_path))
    services.store.create_list("newsletter")
    services.close()
    result = run(tmp_path, "import", str(FIXTURES / "page-example.csv"))
    assert result.exit_code == 0 and "imported into newsletter" in result.stdout


@pytest.mark.parametrize(("output", "first"), [("out.csv", "emailAddress,unsubscribeAll"), ("out.jsonl", '{"email')])
def test_export_round_trip(tmp_path: Path, output: str, first: str) -> None:
    run(tmp_path / "a", "import", str(FIXTURES / "page-example.csv"))
    target = tmp_path / output
    result = run(tmp_path / "a", "export", "-o", str(target))
    assert result.exit_code == 0 and "exported 2 contacts from contacts" in result.stderr
    assert target.read_text().startswith(first)
    assert run(tmp_path / "b", "import", str(target)).exit_code == 0
    assert contacts(tmp_path / "b") == contacts(tmp_path / "a")


def test_export_writes_its_file_private_and_never_through_a_symlink(tmp_path: Path) -> None:
    """A symlink at the output or at the temporary name the export used to write is replaced, not followed."""
    run(tmp_path / "d", "import", str(FIXTURES / "page-example.csv"))
    victim = tmp_path / "victim.txt"
    victim.write_text("not to be overwritten")
    target = tmp_path / "out.csv"
    target.symlink_to(victim)
    Path(f"{target}.partial").symlink_to(victim)
    with usual_umask():
        result = run(tmp_path / "d", "export", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert not target.is_symlink() and target.read_text().startswith("emailAddress,") and mode(target) == 0o600
    assert victim.read_text() == "not to be overwritten"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "out.csv", "out.csv.partial", "victim.txt"]


def test_the_rejects_file_is_private_and_replaces_a_symlink(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("emailAddress\nok@example.com\nnope\n")
    victim = tmp_path / "victim.txt"
    victim.write_text("not to be overwritten")
    for args in (["--dry-run"], []):
        rejects = tmp_path / f"rejects{len(args)}.csv"
        rejects.symlink_to(victim)
        with usual_umask():
            result = run(tmp_path / "d", "import", str(source), "--rejects", str(rejects), *args)
        assert result.exit_code == 1, result.output
        assert not rejects.is_symlink() and mode(rejects) == 0o600
        assert rejects.read_text() == "line,emailAddress,column,reason\n3,nope,emailAddress,there is no @\n"
    assert victim.read_text() == "not to be overwritten"


def test_an_output_that_cannot_be_written_is_one_line_before_any_work(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("emailAddress\nok@example.com\n")
    for args in (
        ["export", "--output", str(tmp_path / "missing" / "out.csv")],
        ["import", str(source), "--rejects", str(tmp_path / "missing" / "r.csv")],
    ):
        result = run(tmp_path / "d", *args)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.stderr.splitlines() == [
            f"Error: {args[-2]}: cannot write {args[-1]}: there is no folder {tmp_path / 'missing'}"
        ]
    assert not (tmp_path / "d").exists()


def test_export_to_stdout_with_a_filter(tmp_path: Path) -> None:
    run(tmp_path, "import", str(FIXTURES / "page-example.csv"))
    result = run(tmp_path, "export", "--unsubscribed", "--format", "json")
    assert result.exit_code == 0
    assert result.stdout == (
        '{"emailAddress":"jane.smith@example.com","unsubscribeAll":true,'
        '"attributesData":"{\\"Name\\":\\"Jane\\",\\"Company\\":null}"}\n'
    )


def test_jobs_list_cancel_and_resume(tmp_path: Path) -> None:
    run(tmp_path, "import", str(FIXTURES / "page-example.csv"))
    services = Services.open(Settings(data_dir=tmp_path))
    source = tmp_path / "later.csv"
    source.write_text("emailAddress\nlater@example.com\n")
    queued = services.jobs.submit(source, ImportOptions("contacts"), file_name="later.csv")
    services.close()
    listed = run(tmp_path, "jobs")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0].startswith(queued.id) and "queued" in lines[0] and "page-example.csv" in lines[1]
    runner = CliRunner()
    cancel = runner.invoke(main, ["jobs", "--data-dir", str(tmp_path), "cancel", queued.id])
    assert cancel.exit_code == 0 and f"job {queued.id}: cancelled" in cancel.stdout
    resume = runner.invoke(main, ["jobs", "--data-dir", str(tmp_path), "resume", queued.id])
    assert resume.exit_code == 0 and "completed: 1 rows: created 1" in resume.stdout, resume.output
    missing = runner.invoke(main, ["jobs", "--data-dir", str(tmp_path), "cancel", "nope"])
    assert missing.exit_code == 2 and "Job nope doesn't exist." in missing.stderr


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_only(tmp_path: Path) -> None:
    services = Services.open(Settings(data_dir=tmp_path))
    services.ensure_default_list()
    source = tmp_path / "in.csv"
    source.write_text("emailAddress\n" + "".join(f"u{i}@example.com\n" for i in range(50)))
    services.jobs.batch_rows = 10
    tty, plain = _Tty(), io.StringIO()
    job = services.jobs.submit(source, ImportOptions("contacts"), file_name="in.csv", run_here=True)
    line, silent = _ProgressLine(tty), _ProgressLine(plain)

    def both(j: object) -> None:
        line(j)
        silent(j)

    services.jobs.run(job.id, progress=both)
    services.close()
    assert plain.getvalue() == ""
    shown = tty.getvalue()
    assert shown.startswith("\r[") and "rows/s" in shown and "ETA" in shown and "50 rows" in shown


def test_import_next_to_a_running_server(tmp_path: Path) -> None:
    boto3 = pytest.importorskip("boto3")
    from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, run_server

    data_dir = tmp_path / "shared"
    with run_server(data_dir) as server:
        result = run(data_dir, "import", str(FIXTURES / "page-example.csv"))
        assert result.exit_code == 0, result.output
        client = boto3.client(
            "sesv2",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )
        listed = client.list_contacts(ContactListName="contacts")["Contacts"]
        assert sorted(c["EmailAddress"] for c in listed) == ["jane.smith@example.com", "john.doe@example.com"]
        jobs = client.list_import_jobs()["ImportJobs"]
        assert len(jobs) == 1 and jobs[0]["JobStatus"] == "COMPLETED"  # the CLI's job, seen by the server


def test_the_summary_counts_rows_kept_unsubscribed_or_opted_out(tmp_path: Path) -> None:
    """An explicit topic opt-out is kept as unsubscribe-all is, and the summary says how many rows were held back;
    ``--resubscribe`` lifts both (its help says so)."""
    services = Services.open(Settings(data_dir=tmp_path))
    services.ensure_default_list()
    services.store.update_list("contacts", topics=[Topic("news", "News")])
    services.close()
    head = "emailAddress,unsubscribeAll,topicPreferences.news\n"
    first, again = tmp_path / "first.csv", tmp_path / "again.csv"
    first.write_text(head + "out@example.com,false,OPT_OUT\ngone@example.com,true,\n")
    again.write_text(head + "out@example.com,false,OPT_IN\ngone@example.com,false,\n")
    assert run(tmp_path, "import", str(first)).exit_code == 0
    result = run(tmp_path, "import", str(again))
    assert result.exit_code == 0, result.output
    assert "unchanged 2, kept unsubscribed 1, kept opted out 1" in result.stdout
    dry = run(tmp_path, "import", str(again), "--dry-run", "--resubscribe")
    assert "updated 2" in dry.stdout and "kept" not in dry.stdout
    help_text = " ".join(CliRunner().invoke(main, ["import", "--help"]).output.split())
    assert "--resubscribe Let the file opt contacts back in: unsubscribeAll=false re-subscribes" in help_text
    assert "and OPT_IN replaces a topic's explicit OPT_OUT" in help_text


def test_import_a_mailchimp_export_with_map(tmp_path: Path) -> None:
    """`--map COLUMN=FIELD` maps each column; the ones not named keep what their names say (`Email Address` is
    the address), and an unknown one is an error naming it."""
    services = Services.open(Settings(data_dir=tmp_path))
    services.store.create_list("contacts", topics=[Topic("news", "News")])
    services.close()
    source = str(FIXTURES / "mailchimp-export.csv")
    result = run(tmp_path, "import", source)
    assert result.exit_code == 2 and f"{source}:1:2: unknown column 'First Name'" in result.stderr
    maps = [
        "--map=First Name=attribute:FirstName",
        "--map=Last Name=attribute:LastName",
        "--map=Address=skip",
        "--map=Phone Number=skip",
        "--map=MEMBER_RATING=attribute:Rating:number",
        "--map=OPTIN_TIME=skip",
        "--map=Newsletter=topic:news",
        "--map=TAGS=skip",
    ]
    rejects = tmp_path / "rejects.csv"
    result = run(tmp_path, "import", source, *maps, "--rejects", str(rejects))
    assert result.exit_code == 1, result.output
    assert "created 3, rejected 1" in result.stdout
    assert rejects.read_text() == "line,emailAddress,column,reason\n5,not-an-address,Email Address,there is no @\n"
    assert contacts(tmp_path) == [
        ("ann.lee@example.com", 0, '{"FirstName":"Ann","LastName":"Lee","Rating":4}'),
        ("bob.stone@example.org", 0, '{"FirstName":"Bob","LastName":"Stone, Jr.","Rating":2}'),
        ("carla.diaz@example.net", 0, '{"FirstName":"Carla","LastName":"Díaz","Rating":5}'),
    ]
    conn = sqlite3.connect(tmp_path / "sescontacts.db")
    try:
        assert conn.execute("SELECT email, topics FROM contacts ORDER BY email_key").fetchall() == [
            ("ann.lee@example.com", '{"news":"OPT_IN"}'),
            ("bob.stone@example.org", '{"news":"OPT_OUT"}'),
            ("carla.diaz@example.net", '{"news":"OPT_IN"}'),
        ]
    finally:
        conn.close()


def test_an_email_name_file_imports_with_map_or_extra_columns(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_text("email,name\nann@example.com,Ann\n")
    assert run(tmp_path / "a", "import", str(source), "--map", "name=attribute:Name").exit_code == 0
    assert contacts(tmp_path / "a") == [("ann@example.com", 0, '{"Name":"Ann"}')]
    assert run(tmp_path / "b", "import", str(source), "--extra-columns-as-attributes").exit_code == 0
    assert contacts(tmp_path / "b") == [("ann@example.com", 0, '{"name":"Ann"}')]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("First Name=attribut:FirstName", "column 'First Name': 'attribut:FirstName' is not a field; use email,"),
        ("Age=attribute:", "column 'Age': attribute:NAME needs a name"),
        ("First Name", "'First Name' is not COLUMN=FIELD"),
    ],
)
def test_a_bad_map_spec_is_a_usage_error_naming_the_column(tmp_path: Path, spec: str, message: str) -> None:
    result = run(tmp_path, "import", str(FIXTURES / "mailchimp-export.csv"), "--map", spec)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --map: " + message), result.stderr
    assert not (tmp_path / "sescontacts.db").exists()  # refused before anything was opened


def test_a_map_naming_a_missing_column_or_a_json_file_writes_nothing(tmp_path: Path) -> None:
    result = run(tmp_path, "import", str(FIXTURES / "page-example.csv"), "--map", "Phone=skip")
    assert result.exit_code == 2 and "the mapping names a column the file does not have: 'Phone'" in result.stderr
    result = run(tmp_path, "import", str(FIXTURES / "page-example.json"), "--map", "email=email")
    assert result.exit_code == 2 and "a column mapping applies to CSV files" in result.stderr
    assert contacts(tmp_path) == []


def test_a_mapped_job_resumes_with_its_mapping(tmp_path: Path) -> None:
    """The mapping is stored with the job: a resumed job reads the file the same way."""
    from sescontacts.bulk.job_manager import Job, JobManager

    services = Services.open(Settings(data_dir=tmp_path))
    try:
        services.ensure_default_list()
        jobs: JobManager = services.jobs
        source = tmp_path / "people.csv"
        source.write_text("Email Address,Score\n" + "".join(f"u{i}@example.com,{i}\n" for i in range(25)))
        options = ImportOptions("contacts", column_map={"Score": "attribute:Score:number"})
        jobs.batch_rows, jobs.commit_rows = 10, 10
        job = jobs.submit(source, options, file_name="people.csv", run_here=True)

        def cancel_after_the_first_commit(seen: Job) -> None:
            if seen.state == "running" and seen.rows_done == 10:
                jobs.cancel(seen.id)

        job = jobs.run(job.id, progress=cancel_after_the_first_commit)
        assert job.state == "cancelled" and job.rows_done == 10
        job = jobs.resume(job.id, run_here=True)
        job = jobs.run(job.id)
        assert job.state == "completed" and job.rows_done == 25 and job.options.column_map == options.column_map
    finally:
        services.close()
    assert contacts(tmp_path)[24] == ("u9@example.com", 0, '{"Score":9}')


def test_a_cli_import_is_a_job_started_by_the_cli_and_listed_so(tmp_path: Path) -> None:
    """History item 1: the CLI's import job says who started it ("cli"), and its changes are that job's."""
    assert run(tmp_path, "import", str(FIXTURES / "page-example.csv")).exit_code == 0
    services = Services.open(Settings(data_dir=tmp_path))
    try:
        (job,) = services.jobs.list()
        assert job.meta["started_by"] == "cli"
        changes = services.history.job_changes(job.id)
        assert len(changes) == 2 and {c.actor for c in changes} == {Actor("job", "cli", job.id)}
    finally:
        services.close()
    listed = run(tmp_path, "jobs").stdout
    assert f"{job.id}  completed" in listed and " cli " in listed


def test_the_cli_acts_as_its_os_user() -> None:
    import getpass

    from sescontacts.cli import cli_actor

    assert cli_actor() == Actor("cli", getpass.getuser())
