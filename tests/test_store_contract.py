"""The contract every ``ContactStore`` must keep, written once and run against every backend.

The ``store`` fixture is parametrised over the backends in ``tests/support/stores.py`` (ids ``sqlite``,
``ses-local``, ``ses-local-throttled``, ``ses-moto``): each test gets a fresh store holding exactly one empty
list called ``list_name`` (no topics, no contacts), closed after the test. A backend declares what it cannot
do there (its ``capabilities``: tests marked ``@pytest.mark.needs("<capability>")`` are skipped with the
reason) and which tests it skips by name, with the reason. To run the contract on a new backend, add it there.

Only the ``ContactStore`` interface is used here, never SQL, so a failure is a behaviour a user would see.
Contacts are created one by one unless the test is about bulk writes, so small sizes keep the suite fast on a
paced backend.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from sescontacts.errors import AlreadyExists, BadRequest, ListNotFound, NotFound, SesContactsError
from sescontacts.model import (
    MISSING,
    OPT_IN,
    OPT_OUT,
    AttributeCondition,
    Contact,
    ContactList,
    ContactPatch,
    ContactQuery,
    Count,
    ListedContact,
    Outcome,
    Topic,
    TopicFilter,
    UpsertPolicy,
)
from sescontacts.store.base import BulkAction, ContactStore, MatchingStep, SyncedStore

from .support import stores
from .support.stores import all_pages, emails

TOPICS = (
    Topic("news", "News", default_status=OPT_IN, description="Monthly news"),
    Topic("offers", "Offers", default_status=OPT_OUT),
    Topic("events", "Events", default_status=OPT_IN),
)


# -- fixtures: the backends ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=stores.CONTRACT_BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[stores.Backend]:
    """Module-scoped, so each backend's server starts once and the tests run grouped by backend."""
    with stores.open_backend(request.param, tmp_path_factory) as opened:
        yield opened


@pytest.fixture
def list_name() -> str:
    return "contacts"


@pytest.fixture
def store(
    backend: stores.Backend, request: pytest.FixtureRequest, tmp_path: Path, list_name: str
) -> Iterator[ContactStore]:
    """A fresh store on ``backend``, unless the test is one the backend cannot run (skipped with the reason)."""
    marker = request.node.get_closest_marker("needs")
    reason = backend.skip_reason(request.node.originalname, marker.args if marker else ())
    if reason:
        pytest.skip(reason)
    with backend.open_store(tmp_path, list_name) as contact_store:
        yield contact_store


@pytest.fixture(params=stores.BACKEND_KINDS)
def unlimited_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContactStore]:
    """A store without SES's one-list quota; only the local backend can lift it (no server is needed to skip)."""
    if request.param != "sqlite":
        pytest.skip(stores.QUOTA_SKIP)
    with stores.sqlite_store(tmp_path / "unlimited.db", max_lists=None) as contact_store:
        yield contact_store


@pytest.fixture
def make_topics(store: ContactStore, list_name: str) -> Callable[..., ContactList]:
    """Gives the ``list_name`` list exactly these topics."""

    def make(topics: Sequence[Topic], description: str | None = None) -> ContactList:
        return store.update_list(list_name, topics=topics, description=description)

    return make


# -- helpers ---------------------------------------------------------------------------------------------


def add(store: ContactStore, list_name: str, email: str, **fields: object) -> Contact:
    return store.create_contact(list_name, Contact(email=email, **fields))  # type: ignore[arg-type]


def utc_day(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")


# -- contact lists ---------------------------------------------------------------------------------------


def test_implements_the_whole_interface(store: ContactStore) -> None:
    assert isinstance(store, ContactStore)  # every method of the protocol is there
    assert isinstance(store, SyncedStore) == (store.backend == "ses")  # only the ses backend keeps a mirror
    assert store.backend in ("local", "ses")
    assert store.region and store.account_id


def test_the_fixture_list_exists_empty(store: ContactStore, list_name: str) -> None:
    contact_list = store.get_list(list_name)
    assert contact_list.name == list_name
    assert contact_list.topics == ()
    assert contact_list.created > 0
    assert contact_list.updated >= contact_list.created
    assert [lst.name for lst in store.list_lists().items] == [list_name]
    assert all_pages(store, list_name) == []


def test_a_second_list_is_refused_with_ses_quota_message(store: ContactStore, list_name: str) -> None:
    with pytest.raises(BadRequest) as exc:
        store.create_list("another")
    assert exc.value.message == "A maximum of 1 Lists allowed per account."
    # Even the same name: SES answers the quota, never AlreadyExists.
    with pytest.raises(BadRequest) as exc:
        store.create_list(list_name)
    assert not isinstance(exc.value, AlreadyExists)
    assert [lst.name for lst in store.list_lists().items] == [list_name]


def test_missing_list_is_not_found_for_every_operation(store: ContactStore) -> None:
    message = "List with name: nosuch doesn't exist."
    operations: list[Callable[[], object]] = [
        lambda: store.get_list("nosuch"),
        lambda: store.update_list("nosuch", description="x"),
        lambda: store.delete_list("nosuch"),
        lambda: store.create_contact("nosuch", Contact("a@example.com")),
        lambda: store.get_contact("nosuch", "a@example.com"),
        lambda: store.list_contacts("nosuch"),
    ]
    for operation in operations:
        with pytest.raises(ListNotFound) as exc:  # a NotFound, told from a contact's by its type
            operation()
        assert exc.value.message == message


@pytest.mark.needs("counts", "bulk")
def test_missing_list_is_not_found_for_counts_and_bulk(store: ContactStore) -> None:
    operations: list[Callable[[], object]] = [
        lambda: store.count_contacts("nosuch", ContactQuery()),
        lambda: store.count_contacts("nosuch", ContactQuery(email_contains="a"), cap=10),
        lambda: store.list_stats("nosuch"),
        lambda: store.upsert_contacts("nosuch", [ContactPatch("a@example.com")], UpsertPolicy()),
        lambda: store.delete_contacts("nosuch", ["a@example.com"]),
    ]
    for operation in operations:
        with pytest.raises(ListNotFound) as exc:
            operation()
        assert exc.value.message == "List with name: nosuch doesn't exist."


def test_invalid_list_name_is_bad_request_not_not_found(store: ContactStore) -> None:
    for operation in (store.get_list, store.delete_list):
        with pytest.raises(BadRequest) as exc:
            operation("bad name!")
        assert exc.value.message.startswith("ContactListName can contain up to 64 characters.")


def test_update_list_replaces_topics_and_description(store: ContactStore, list_name: str) -> None:
    before = store.get_list(list_name)
    updated = store.update_list(list_name, topics=TOPICS, description="Our newsletter")
    assert updated.topics == TOPICS
    assert updated.description == "Our newsletter"
    assert updated.updated >= before.updated
    assert store.get_list(list_name) == updated

    # topics=None keeps them; new topics replace all of them (SES: "a complete replacement").
    assert store.update_list(list_name, description="Renamed").topics == TOPICS
    only = (Topic("weekly", "Weekly digest", default_status=OPT_OUT),)
    assert store.update_list(list_name, topics=only).topics == only
    assert store.get_list(list_name).topics == only


def test_topic_fields_round_trip_in_order(make_topics: Callable[..., ContactList], store: ContactStore) -> None:
    topics = tuple(Topic(f"t{i:02d}", f"Topic {i}", default_status=(OPT_IN, OPT_OUT)[i % 2]) for i in range(20))
    contact_list = make_topics(topics)
    assert store.get_list(contact_list.name).topics == topics


def test_more_than_20_topics_is_refused(store: ContactStore, list_name: str) -> None:
    topics = [Topic(f"t{i}", f"Topic {i}") for i in range(21)]
    with pytest.raises(BadRequest) as exc:  # not LimitExceeded: what the probe of real SES saw
        store.update_list(list_name, topics=topics)
    assert exc.value.message == "Maximum of <20> topics allowed per ContactList"
    assert store.get_list(list_name).topics == ()


def test_duplicate_topic_names_are_refused(store: ContactStore, list_name: str) -> None:
    with pytest.raises(BadRequest) as exc:
        store.update_list(list_name, topics=[Topic("a", "A"), Topic("a", "Again")])
    assert exc.value.message == "Duplicate topic names are not allowed within a List."


def test_delete_list_deletes_its_contacts(store: ContactStore, list_name: str) -> None:
    add(store, list_name, "a@example.com")
    store.delete_list(list_name)
    assert store.list_lists().items == []
    with pytest.raises(NotFound):
        store.get_contact(list_name, "a@example.com")
    # The quota is free again, and the new list starts empty.
    store.create_list(list_name)
    assert all_pages(store, list_name) == []
    with pytest.raises(NotFound):
        store.get_contact(list_name, "a@example.com")


@pytest.mark.needs("tags")
def test_tags_add_overwrite_and_remove(store: ContactStore, list_name: str) -> None:
    store.tag_list(list_name, [("team", "growth"), ("env", "test")])
    assert dict(store.get_list(list_name).tags) == {"team": "growth", "env": "test"}
    store.tag_list(list_name, [("env", "prod")])
    assert dict(store.get_list(list_name).tags) == {"team": "growth", "env": "prod"}
    store.untag_list(list_name, ["team", "not-there"])
    assert dict(store.get_list(list_name).tags) == {"env": "prod"}
    with pytest.raises(NotFound):
        store.tag_list("nosuch", [("k", "v")])


def test_list_arn_names_region_account_and_list(store: ContactStore, list_name: str) -> None:
    assert store.list_arn(list_name) == f"arn:aws:ses:{store.region}:{store.account_id}:contact-list/{list_name}"


def test_lifting_the_quota_allows_many_lists(unlimited_store: ContactStore) -> None:
    store = unlimited_store
    for name in ("beta", "alpha", "gamma"):
        store.create_list(name, description=f"{name} list", tags=[("k", name)])
    with pytest.raises(AlreadyExists) as exc:
        store.create_list("alpha")
    assert exc.value.message == "List with name: alpha already exists."
    first = store.list_lists(page_size=2)
    assert len(first.items) == 2 and first.next_token
    second = store.list_lists(page_size=2, token=first.next_token)
    assert second.next_token is None
    names = [lst.name for lst in first.items + second.items]
    assert sorted(names) == sorted({*names}) and {"alpha", "beta", "gamma"} <= set(names)
    # Contacts belong to their own list.
    add(store, "alpha", "a@example.com")
    assert all_pages(store, "beta") == []
    store.delete_list("alpha")
    add(store, "beta", "a@example.com")


# -- single contacts -------------------------------------------------------------------------------------


def test_create_and_get_round_trip(make_topics: Callable[..., ContactList], store: ContactStore) -> None:
    name = make_topics(TOPICS).name
    before = time.time()
    created = store.create_contact(
        name,
        Contact(
            email="ann+news@example.com",
            unsubscribe_all=False,
            topic_preferences={"news": OPT_OUT, "offers": OPT_IN},
            attributes_data='{"name": "Ann",  "plan":"pro"}',
        ),
    )
    got = store.get_contact(name, "ann+news@example.com")
    assert got.email == "ann+news@example.com"
    assert dict(got.topic_preferences) == {"news": OPT_OUT, "offers": OPT_IN}
    assert got.unsubscribe_all is False
    assert got.attributes_data == '{"name": "Ann",  "plan":"pro"}'  # byte for byte, as SES keeps it
    assert got.created == pytest.approx(created.created, abs=0.01)
    assert before - 5 <= got.created <= time.time() + 5
    assert got.updated == pytest.approx(got.created, abs=0.01)


def test_contact_without_attributes_has_none(store: ContactStore, list_name: str) -> None:
    add(store, list_name, "a@example.com", unsubscribe_all=True)
    got = store.get_contact(list_name, "a@example.com")
    assert got.attributes_data in (None, "")
    assert got.attributes() is None
    assert got.unsubscribe_all is True


@pytest.mark.parametrize(
    "email",
    [
        "a+b@example.com",
        "ünï+tag@exämple.com",
        "o'brien@example.co.uk",
        "x_y-z.w@sub.example.museum",
        "δοκιμή@παράδειγμα.δοκιμή",
    ],
)
def test_unusual_but_valid_addresses_round_trip(store: ContactStore, list_name: str, email: str) -> None:
    add(store, list_name, email)
    assert store.get_contact(list_name, email).email == email
    assert emails(all_pages(store, list_name)) == [email]
    store.delete_contact(list_name, email)
    assert all_pages(store, list_name) == []


@pytest.mark.needs("duplicate_check")
def test_duplicate_create_is_already_exists(store: ContactStore, list_name: str) -> None:
    add(store, list_name, "a@example.com", attributes_data='{"v": 1}')
    with pytest.raises(AlreadyExists) as exc:
        add(store, list_name, "a@example.com", attributes_data='{"v": 2}')
    assert exc.value.message == "a@example.com already exists in List."
    assert store.get_contact(list_name, "a@example.com").attributes() == {"v": 1}


def test_missing_contact_is_not_found(store: ContactStore, list_name: str) -> None:
    for operation in (store.get_contact, store.delete_contact):
        with pytest.raises(NotFound) as exc:
            operation(list_name, "nobody@example.com")
        assert exc.value.message == "nobody@example.com doesn't exist in List."
        assert not isinstance(exc.value, ListNotFound)  # the list exists
    with pytest.raises(NotFound):
        store.update_contact(list_name, Contact("nobody@example.com"))


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "EmailAddress can't be blank."),
        ("not-an-address", "EmailAddress <not-an-address> is invalid"),
        ("two@@example.com", "EmailAddress <two@@example.com> is invalid"),
        ("space @example.com", "EmailAddress <space @example.com> is invalid"),
    ],
)
def test_invalid_email_is_bad_request_and_nothing_is_written(
    store: ContactStore, list_name: str, email: str, message: str
) -> None:
    with pytest.raises(BadRequest) as exc:
        add(store, list_name, email)
    assert exc.value.message == message
    assert all_pages(store, list_name) == []


def test_email_syntax_is_checked_before_the_list_exists(store: ContactStore) -> None:
    with pytest.raises(BadRequest) as exc:
        add(store, "nosuch", "not-an-address")
    assert exc.value.message == "EmailAddress <not-an-address> is invalid"


def test_unknown_topic_in_preferences_is_refused(make_topics: Callable[..., ContactList], store: ContactStore) -> None:
    name = make_topics(TOPICS).name
    with pytest.raises(BadRequest) as exc:  # 400, as SES answers it (a filter on such a topic is a 404)
        add(store, name, "a@example.com", topic_preferences={"news": OPT_IN, "sports": OPT_IN})
    assert exc.value.message == f"List: {name} doesn't contain Topic: sports"
    with pytest.raises(NotFound):
        store.get_contact(name, "a@example.com")
    add(store, name, "a@example.com")
    with pytest.raises(BadRequest, match="doesn't contain Topic: sports"):
        store.update_contact(name, Contact("a@example.com", topic_preferences={"sports": OPT_OUT}))
    assert dict(store.get_contact(name, "a@example.com").topic_preferences) == {}


def test_delete_contact(store: ContactStore, list_name: str) -> None:
    add(store, list_name, "a@example.com")
    add(store, list_name, "b@example.com")
    store.delete_contact(list_name, "a@example.com")
    assert emails(all_pages(store, list_name)) == ["b@example.com"]
    with pytest.raises(NotFound):
        store.get_contact(list_name, "a@example.com")
    add(store, list_name, "a@example.com")  # the address can come back


@pytest.mark.needs("case_insensitive_identity")
def test_case_identity_one_person_first_spelling_kept(store: ContactStore, list_name: str) -> None:
    """``Ann@Example.com`` and ``ann@example.com`` are one person: never two contacts without the user knowing.
    (Where the upstream SES keeps spellings apart, the ses backend follows it: test_store_ses_moto.py.)"""
    add(store, list_name, "Ann@Example.com", attributes_data='{"n": 1}')
    assert store.get_contact(list_name, "ann@example.com").email == "Ann@Example.com"
    assert store.get_contact(list_name, "ANN@EXAMPLE.COM").email == "Ann@Example.com"
    with pytest.raises(AlreadyExists):
        add(store, list_name, "ann@example.com")
    store.update_contact(list_name, Contact("ann@EXAMPLE.com", attributes_data='{"n": 2}'))
    got = store.get_contact(list_name, "Ann@Example.com")
    assert got.email == "Ann@Example.com" and got.attributes() == {"n": 2}
    assert emails(all_pages(store, list_name)) == ["Ann@Example.com"]
    store.delete_contact(list_name, "ANN@example.COM")
    assert all_pages(store, list_name) == []


@pytest.mark.needs("case_insensitive_identity")
def test_unicode_spellings_of_one_address_are_one_person(store: ContactStore, list_name: str) -> None:
    """A composed ``é`` and an ``e`` followed by a combining accent look identical: one person (NFC)."""
    add(store, list_name, "Ren\u00e9@example.com")
    with pytest.raises(AlreadyExists):
        add(store, list_name, "rene\u0301@example.com")
    assert store.get_contact(list_name, "rene\u0301@example.com").email == "Ren\u00e9@example.com"
    assert emails(all_pages(store, list_name)) == ["Ren\u00e9@example.com"]


def test_topic_default_preferences_are_derived_not_stored(
    make_topics: Callable[..., ContactList], store: ContactStore
) -> None:
    contact_list = make_topics(TOPICS)
    add(store, contact_list.name, "a@example.com", topic_preferences={"offers": OPT_IN})
    got = store.get_contact(contact_list.name, "a@example.com")
    assert dict(got.topic_preferences) == {"offers": OPT_IN}
    assert got.default_preferences(store.get_list(contact_list.name)) == {"news": OPT_IN, "events": OPT_IN}
    listed = all_pages(store, contact_list.name)[0]
    assert dict(listed.topic_preferences) == {"offers": OPT_IN}


def test_update_replaces_everything_by_default(make_topics: Callable[..., ContactList], store: ContactStore) -> None:
    name = make_topics(TOPICS).name
    created = add(
        store, name, "a@example.com", topic_preferences={"news": OPT_OUT, "offers": OPT_IN}, attributes_data='{"a": 1}'
    )
    store.update_contact(name, Contact("a@example.com", unsubscribe_all=True, topic_preferences={"events": OPT_OUT}))
    got = store.get_contact(name, "a@example.com")
    assert dict(got.topic_preferences) == {"events": OPT_OUT}
    assert got.unsubscribe_all is True
    assert got.attributes() is None  # omitted attributes are cleared, as SES's UpdateContact does
    assert got.created == pytest.approx(created.created, abs=0.01)
    assert got.updated >= got.created


def test_update_can_merge_topic_preferences(make_topics: Callable[..., ContactList], store: ContactStore) -> None:
    name = make_topics(TOPICS).name
    add(store, name, "a@example.com", topic_preferences={"news": OPT_OUT, "offers": OPT_IN}, attributes_data='{"a": 1}')
    store.update_contact(
        name,
        Contact("a@example.com", topic_preferences={"offers": OPT_OUT, "events": OPT_IN}, attributes_data='{"b": 2}'),
        merge_topic_preferences=True,
    )
    got = store.get_contact(name, "a@example.com")
    assert dict(got.topic_preferences) == {"news": OPT_OUT, "offers": OPT_OUT, "events": OPT_IN}
    assert got.attributes() == {"b": 2}
    assert got.unsubscribe_all is False


# -- pages -----------------------------------------------------------------------------------------------


@pytest.mark.needs("pagination")
def test_pages_are_ordered_by_address_case_insensitively(store: ContactStore, list_name: str) -> None:
    addresses = [f"user{i:02d}@example.com" for i in range(23)] + ["Bob@example.com", "alice@example.com"]
    for address in addresses:
        add(store, list_name, address)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = store.list_contacts(list_name, page_size=7, token=token)
        assert len(page.items) <= 7
        seen += emails(page.items)
        pages += 1
        token = page.next_token
        if token is None:
            break
    assert seen == sorted(addresses, key=str.lower)
    assert pages in (4, 5)  # 25 contacts in pages of 7; a last empty page is allowed


@pytest.mark.needs("pagination")
def test_pages_stay_stable_while_contacts_are_added(store: ContactStore, list_name: str) -> None:
    """Contacts added between pages never make an existing contact appear twice or not at all."""
    original = [f"m{i:02d}@example.com" for i in range(0, 40, 2)]
    for address in original:
        add(store, list_name, address)
    first = store.list_contacts(list_name, page_size=6)
    assert emails(first.items) == original[:6]
    # New contacts before the cursor, between pages, and after it.
    added = ["a-new@example.com", "m05@example.com", "m11@example.com", "m33@example.com", "z-new@example.com"]
    for address in added:
        add(store, list_name, address)
    seen = emails(first.items)
    token = first.next_token
    while token:
        page = store.list_contacts(list_name, page_size=6, token=token)
        seen += emails(page.items)
        token = page.next_token
    assert len(seen) == len(set(seen))
    assert set(original) <= set(seen)
    # Whatever was added after the cursor shows up; what was added before it does not.
    assert {"m11@example.com", "m33@example.com", "z-new@example.com"} <= set(seen)
    assert "a-new@example.com" not in seen and "m05@example.com" not in seen


@pytest.mark.needs("pagination")
def test_page_token_survives_deleting_the_last_contact_of_the_page(store: ContactStore, list_name: str) -> None:
    for i in range(6):
        add(store, list_name, f"c{i}@example.com")
    first = store.list_contacts(list_name, page_size=3)
    store.delete_contact(list_name, "c2@example.com")
    rest = store.list_contacts(list_name, page_size=3, token=first.next_token)
    assert emails(rest.items) == ["c3@example.com", "c4@example.com", "c5@example.com"]


@pytest.mark.needs("pagination")
def test_tampered_or_foreign_tokens_are_bad_request(
    make_topics: Callable[..., ContactList], store: ContactStore
) -> None:
    name = make_topics(TOPICS).name
    for i in range(5):
        add(store, name, f"c{i}@example.com")
    token = store.list_contacts(name, page_size=2).next_token
    assert token is not None
    assert "c1@example.com" not in token  # opaque: the position is not readable
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    filtered = ContactQuery(status=OPT_IN, topic=TopicFilter("news", use_default=True))
    for bad in (flipped, token[:-4], "not-a-token", "%%%", token + "x", "é"):
        with pytest.raises(BadRequest):
            store.list_contacts(name, page_size=2, token=bad)
    # A token is tied to the query it came from.
    with pytest.raises(BadRequest):
        store.list_contacts(name, filtered, page_size=2, token=token)


# -- filters ---------------------------------------------------------------------------------------------


@pytest.fixture
def filter_list(make_topics: Callable[..., ContactList], store: ContactStore) -> str:
    """news defaults OPT_IN, offers defaults OPT_OUT; five contacts covering every case."""
    name = make_topics(TOPICS).name
    add(store, name, "explicit-in@example.com", topic_preferences={"news": OPT_IN, "offers": OPT_IN})
    add(store, name, "explicit-out@example.com", topic_preferences={"news": OPT_OUT, "offers": OPT_OUT})
    add(store, name, "default@example.com")
    add(store, name, "gone@example.com", unsubscribe_all=True, topic_preferences={"news": OPT_IN, "offers": OPT_IN})
    add(store, name, "gone-default@example.com", unsubscribe_all=True)
    return name


def _filtered(store: ContactStore, name: str, **query: object) -> list[str]:
    return emails(all_pages(store, name, ContactQuery(**query)))  # type: ignore[arg-type]


def test_status_filter_without_topic_selects_unsubscribe_all(store: ContactStore, filter_list: str) -> None:
    assert _filtered(store, filter_list, status=OPT_OUT) == ["gone-default@example.com", "gone@example.com"]
    assert _filtered(store, filter_list, status=OPT_IN) == [
        "default@example.com",
        "explicit-in@example.com",
        "explicit-out@example.com",
    ]


def test_topic_filter_explicit_preferences_only(store: ContactStore, filter_list: str) -> None:
    news = TopicFilter("news", use_default=False)
    # Unsubscribe-all makes every topic OPT_OUT, whatever the explicit choice.
    assert _filtered(store, filter_list, topic=news, status=OPT_IN) == ["explicit-in@example.com"]
    assert _filtered(store, filter_list, topic=news, status=OPT_OUT) == [
        "explicit-out@example.com",
        "gone-default@example.com",
        "gone@example.com",
    ]
    assert "default@example.com" not in _filtered(store, filter_list, topic=news)


def test_topic_filter_with_defaults(store: ContactStore, filter_list: str) -> None:
    news = TopicFilter("news", use_default=True)
    offers = TopicFilter("offers", use_default=True)
    assert _filtered(store, filter_list, topic=news, status=OPT_IN) == [
        "default@example.com",
        "explicit-in@example.com",
    ]
    assert _filtered(store, filter_list, topic=offers, status=OPT_IN) == ["explicit-in@example.com"]
    assert _filtered(store, filter_list, topic=offers, status=OPT_OUT) == [
        "default@example.com",
        "explicit-out@example.com",
        "gone-default@example.com",
        "gone@example.com",
    ]
    assert len(_filtered(store, filter_list, topic=news)) == 5


def test_filter_on_unknown_topic_is_not_found(store: ContactStore, filter_list: str) -> None:
    with pytest.raises(NotFound) as exc:
        store.list_contacts(filter_list, ContactQuery(topic=TopicFilter("sports")))
    assert exc.value.message == f"List: {filter_list} doesn't contain Topic: sports"


def test_listed_items_are_list_contacts_pages(store: ContactStore, filter_list: str) -> None:
    """``list_contact_items`` gives ``list_contacts``' pages (contacts, order, tokens, either token paging either)
    as ListContacts shows them, filtered or not, odd addresses included."""
    add(store, filter_list, "Ünïcode@exämple.com", topic_preferences={"offers": OPT_IN})
    add(store, filter_list, "o'brien@example.com", attributes_data='{"q": "\\""}')
    queries = [
        ContactQuery(),
        ContactQuery(status=OPT_OUT),
        ContactQuery(status=OPT_IN, topic=TopicFilter("news", use_default=False)),
        ContactQuery(status=OPT_OUT, topic=TopicFilter("offers", use_default=True)),
    ]
    for query in queries:
        for page_size in (2, 1000):
            token: str | None = None
            while True:
                whole = store.list_contacts(filter_list, query, page_size=page_size, token=token)
                listed = store.list_contact_items(filter_list, query, page_size=page_size, token=token)
                assert [(*item[:2], dict(item[2]), item[3]) for item in listed.items] == [
                    (c.email, c.unsubscribe_all, dict(c.topic_preferences), c.updated) for c in whole.items
                ]
                assert all(isinstance(item, ListedContact) for item in listed.items)
                assert listed.next_token == whole.next_token
                token = whole.next_token
                if token is None:
                    break


@pytest.mark.needs("pagination")
def test_filtered_pages_return_each_match_once(store: ContactStore, filter_list: str) -> None:
    query = ContactQuery(status=OPT_OUT, topic=TopicFilter("offers", use_default=True))
    for page_size in (1, 2, 3):
        assert emails(all_pages(store, filter_list, query, page_size=page_size)) == [
            "default@example.com",
            "explicit-out@example.com",
            "gone-default@example.com",
            "gone@example.com",
        ]


# -- search, sort, counts, stats -------------------------------------------------------------------------


@pytest.fixture
def search_list(store: ContactStore, list_name: str) -> str:
    add(store, list_name, "Ann.Lee@Example.com", attributes_data='{"plan": "pro", "seats": 3, "vip": true}')
    add(store, list_name, "bob@sub.example.com", attributes_data='{"plan": "free", "seats": 1}')
    add(store, list_name, "carol@other.org", attributes_data='{"plan": "pro", "note": null}')
    add(store, list_name, "dan@example.com", attributes_data='{"Plan": "pro"}')
    add(store, list_name, "erin+lee@example.com")
    return list_name


@pytest.mark.needs("search")
def test_search_email_substring_case_insensitive(store: ContactStore, search_list: str) -> None:
    assert _filtered(store, search_list, email_contains="LEE") == ["Ann.Lee@Example.com", "erin+lee@example.com"]
    assert _filtered(store, search_list, email_contains="+") == ["erin+lee@example.com"]
    assert _filtered(store, search_list, email_contains="%") == []  # a literal, not a wildcard
    assert _filtered(store, search_list, email_contains="_") == []


@pytest.mark.needs("search")
def test_search_by_domain_is_exact(store: ContactStore, search_list: str) -> None:
    expected = ["Ann.Lee@Example.com", "dan@example.com", "erin+lee@example.com"]
    assert _filtered(store, search_list, domain="example.com") == expected
    assert _filtered(store, search_list, domain="@EXAMPLE.COM") == expected
    assert _filtered(store, search_list, domain="sub.example.com") == ["bob@sub.example.com"]
    assert _filtered(store, search_list, domain="ample.com") == []


@pytest.mark.needs("search")
def test_search_by_attribute_key_and_value(store: ContactStore, search_list: str) -> None:
    assert _filtered(store, search_list, attributes=(AttributeCondition("plan"),)) == [
        "Ann.Lee@Example.com",
        "bob@sub.example.com",
        "carol@other.org",
    ]
    assert _filtered(store, search_list, attributes=(AttributeCondition("plan", "pro"),)) == [
        "Ann.Lee@Example.com",
        "carol@other.org",
    ]
    # Keys are case-sensitive, as JSON is; non-strings compare by their JSON text.
    assert _filtered(store, search_list, attributes=(AttributeCondition("Plan"),)) == ["dan@example.com"]
    assert _filtered(store, search_list, attributes=(AttributeCondition("seats", "3"),)) == ["Ann.Lee@Example.com"]
    assert _filtered(store, search_list, attributes=(AttributeCondition("vip", "true"),)) == ["Ann.Lee@Example.com"]
    assert _filtered(store, search_list, attributes=(AttributeCondition("note"),)) == [
        "carol@other.org"
    ]  # a null value is a key
    assert _filtered(store, search_list, attributes=(AttributeCondition("note", "null"),)) == ["carol@other.org"]


@pytest.mark.needs("search")
def test_attribute_values_ignore_case_unless_exact(store: ContactStore, search_list: str) -> None:
    add(store, search_list, "zoe@example.com", attributes_data='{"plan": "PRO", "city": "Straße"}')
    pro = ["Ann.Lee@Example.com", "carol@other.org", "zoe@example.com"]
    assert _filtered(store, search_list, attributes=(AttributeCondition("plan", "Pro"),)) == pro
    assert _filtered(store, search_list, attributes=(AttributeCondition("plan", "PRO", exact=True),)) == [
        "zoe@example.com"
    ]
    assert _filtered(store, search_list, attributes=(AttributeCondition("city", "STRASSE"),)) == ["zoe@example.com"]
    assert _filtered(store, search_list, attributes=(AttributeCondition("vip", "TRUE"),)) == []  # JSON text


@pytest.mark.needs("search")
def test_search_conditions_are_all_required(store: ContactStore, search_list: str) -> None:
    assert _filtered(store, search_list, email_prefix="ANN.") == ["Ann.Lee@Example.com"]
    assert _filtered(store, search_list, email_prefix="lee") == []
    both = (AttributeCondition("plan", "PRO"), AttributeCondition("seats"))
    assert _filtered(store, search_list, attributes=both) == ["Ann.Lee@Example.com"]
    assert _filtered(store, search_list, attributes=both, email_contains="carol") == []
    assert _filtered(store, search_list, domain="example.com", email_contains="lee", email_prefix="e") == [
        "erin+lee@example.com"
    ]


@pytest.mark.needs("search")
def test_search_combines_with_filters(store: ContactStore, search_list: str) -> None:
    store.update_contact(search_list, Contact("carol@other.org", unsubscribe_all=True))
    assert _filtered(store, search_list, status=OPT_IN, attributes=(AttributeCondition("plan", "pro"),)) == [
        "Ann.Lee@Example.com"
    ]


@pytest.mark.needs("search")
def test_sort_by_updated_most_recent_first(store: ContactStore, search_list: str) -> None:
    store.update_contact(search_list, Contact("bob@sub.example.com", attributes_data='{"plan": "team"}'))
    contacts = all_pages(store, search_list, ContactQuery(sort="updated"), page_size=2)
    assert contacts[0].email == "bob@sub.example.com"
    assert sorted(emails(contacts)) == sorted(emails(all_pages(store, search_list)))
    stamps = [c.updated for c in contacts]
    assert stamps == sorted(stamps, reverse=True)


@pytest.mark.needs("counts")
def test_counts_match_the_pages(store: ContactStore, filter_list: str) -> None:
    queries = [
        ContactQuery(),
        ContactQuery(status=OPT_OUT),
        ContactQuery(status=OPT_IN),
        ContactQuery(topic=TopicFilter("news")),
        ContactQuery(status=OPT_IN, topic=TopicFilter("news", use_default=True)),
        ContactQuery(email_contains="explicit"),
        ContactQuery(domain="example.com", sort="updated"),
    ]
    for query in queries:
        assert store.count_contacts(filter_list, query) == Count(len(all_pages(store, filter_list, query)))


@pytest.mark.needs("counts")
def test_count_stops_at_the_cap(store: ContactStore, filter_list: str) -> None:
    everyone = ContactQuery(domain="example.com")
    assert store.count_contacts(filter_list, everyone, cap=3) == Count(3, exact=False)
    assert store.count_contacts(filter_list, everyone, cap=5) == Count(5, exact=True)
    assert store.count_contacts(filter_list, everyone, cap=50) == Count(5, exact=True)
    # A plain count is exact whatever the cap: it never scans.
    assert store.count_contacts(filter_list, ContactQuery(), cap=50) == Count(5)


@pytest.mark.needs("counts")
def test_stats_totals_topics_and_days(store: ContactStore, filter_list: str) -> None:
    day_before = utc_day(time.time())
    stats = store.list_stats(filter_list)
    day_after = utc_day(time.time())
    assert (stats.total, stats.unsubscribed, stats.subscribed) == (5, 2, 3)
    by_topic = {t.topic: (t.opt_in, t.opt_out) for t in stats.topics}
    # Defaults count, and unsubscribe-all is OPT_OUT for every topic whatever the explicit choice.
    assert by_topic == {"news": (2, 3), "offers": (1, 4), "events": (3, 2)}
    assert [t.topic for t in stats.topics] == ["news", "offers", "events"]
    assert sum(d.added for d in stats.per_day) == 5 and sum(d.removed for d in stats.per_day) == 0
    assert all(day_before <= d.day <= day_after for d in stats.per_day)
    assert store.daily_counts(filter_list) == stats.per_day


@pytest.mark.needs("counts")
def test_stats_follow_writes(store: ContactStore, filter_list: str) -> None:
    before = store.list_stats(filter_list)
    store.update_contact(filter_list, Contact("default@example.com", topic_preferences={"news": OPT_OUT}))
    store.delete_contact(filter_list, "gone@example.com")
    after = store.list_stats(filter_list)
    assert (after.total, after.unsubscribed) == (4, 1)
    assert {t.topic: (t.opt_in, t.opt_out) for t in after.topics}["news"] == (1, 3)
    assert before.total == 5


# -- bulk ------------------------------------------------------------------------------------------------


def _state(store: ContactStore, name: str, email: str) -> tuple[bool, dict[str, str], dict[str, object] | None]:
    contact = store.get_contact(name, email)
    return contact.unsubscribe_all, dict(contact.topic_preferences), contact.attributes()


@pytest.mark.needs("bulk")
def test_upsert_reports_created_updated_unchanged(make_topics: Callable[..., ContactList], store: ContactStore) -> None:
    name = make_topics(TOPICS).name
    add(store, name, "old@example.com", attributes_data='{"a": 1}', topic_preferences={"news": OPT_OUT})
    add(store, name, "same@example.com", attributes_data='{"a": 1}')
    results = store.upsert_contacts(
        name,
        [
            ContactPatch("new@example.com", attributes={"b": 2}, topic_preferences={"offers": OPT_IN}),
            ContactPatch("old@example.com", topic_preferences={"offers": OPT_IN}),
            ContactPatch("same@example.com", attributes={"a": 1}),
        ],
        UpsertPolicy(),
    )
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED]
    assert _state(store, name, "new@example.com") == (False, {"offers": OPT_IN}, {"b": 2})
    # A missing field leaves the stored value; topic preferences merge by topic.
    assert _state(store, name, "old@example.com") == (False, {"news": OPT_OUT, "offers": OPT_IN}, {"a": 1})
    assert emails(all_pages(store, name)) == ["new@example.com", "old@example.com", "same@example.com"]


@pytest.mark.needs("bulk")
def test_upsert_never_resubscribes_unless_asked(store: ContactStore, list_name: str) -> None:
    add(store, list_name, "gone@example.com", unsubscribe_all=True, attributes_data='{"a": 1}')
    [result] = store.upsert_contacts(
        list_name, [ContactPatch("gone@example.com", unsubscribe_all=False)], UpsertPolicy()
    )
    assert result.kept_unsubscribed is True
    assert result.outcome == Outcome.UNCHANGED
    assert store.get_contact(list_name, "gone@example.com").unsubscribe_all is True

    # Other fields of the same row still apply.
    [result] = store.upsert_contacts(
        list_name, [ContactPatch("gone@example.com", unsubscribe_all=False, attributes={"a": 2})], UpsertPolicy()
    )
    assert (result.outcome, result.kept_unsubscribed) == (Outcome.UPDATED, True)
    assert _state(store, list_name, "gone@example.com") == (True, {}, {"a": 2})

    [result] = store.upsert_contacts(
        list_name, [ContactPatch("gone@example.com", unsubscribe_all=False)], UpsertPolicy(resubscribe=True)
    )
    assert (result.outcome, result.kept_unsubscribed) == (Outcome.UPDATED, False)
    assert store.get_contact(list_name, "gone@example.com").unsubscribe_all is False


def test_upsert_existing_only_leaves_absent_addresses_absent(store: ContactStore, list_name: str) -> None:
    """A bulk action on contacts a page listed: one deleted since is NOT_FOUND, not created again, in a batch
    of only absent addresses (the importer's all-new fast path) as in a mixed one, and in a dry run."""
    add(store, list_name, "here@example.com", unsubscribe_all=True)
    policy = UpsertPolicy(resubscribe=True, existing_only=True)
    gone = [ContactPatch("gone@example.com", unsubscribe_all=False), ContactPatch("gone2@example.com")]
    assert [r.outcome for r in store.upsert_contacts(list_name, gone, policy)] == [Outcome.NOT_FOUND] * 2
    mixed = [ContactPatch("here@example.com", unsubscribe_all=False), gone[0]]
    outcomes = [r.outcome for r in store.upsert_contacts(list_name, mixed, policy, dry_run=True)]
    assert outcomes == [Outcome.UPDATED, Outcome.NOT_FOUND]
    outcomes = [r.outcome for r in store.upsert_contacts(list_name, mixed, policy)]
    assert outcomes == [Outcome.UPDATED, Outcome.NOT_FOUND]
    assert not store.get_contact(list_name, "here@example.com").unsubscribe_all
    for email in ("gone@example.com", "gone2@example.com"):
        with pytest.raises(NotFound):
            store.get_contact(list_name, email)


@pytest.mark.needs("bulk")
def test_upsert_keeps_explicit_topic_opt_outs_unless_asked(
    make_topics: Callable[..., ContactList], store: ContactStore
) -> None:
    """Decided against the state the backend holds (SES's own, on the ses backend): an explicit OPT_OUT is
    never turned into OPT_IN by an import; a topic without an explicit choice is not protected."""
    name = make_topics(TOPICS).name
    add(store, name, "out@example.com", topic_preferences={"news": OPT_OUT, "offers": OPT_IN})
    add(store, name, "default@example.com")
    patches = [
        ContactPatch("out@example.com", topic_preferences={"news": OPT_IN, "events": OPT_OUT}),
        ContactPatch("default@example.com", topic_preferences={"offers": OPT_IN}),
    ]
    results = store.upsert_contacts(name, patches, UpsertPolicy())
    assert [(r.outcome, r.kept_opted_out) for r in results] == [(Outcome.UPDATED, True), (Outcome.UPDATED, False)]
    assert _state(store, name, "out@example.com") == (
        False,
        {"news": OPT_OUT, "offers": OPT_IN, "events": OPT_OUT},
        None,
    )
    assert _state(store, name, "default@example.com") == (False, {"offers": OPT_IN}, None)
    [result] = store.upsert_contacts(name, patches[:1], UpsertPolicy(resubscribe=True))
    assert (result.outcome, result.kept_opted_out) == (Outcome.UPDATED, False)
    assert _state(store, name, "out@example.com")[1] == {"news": OPT_IN, "offers": OPT_IN, "events": OPT_OUT}


@pytest.mark.needs("bulk")
def test_upsert_replace_record_overrides_topics_and_unsubscribe(
    make_topics: Callable[..., ContactList], store: ContactStore
) -> None:
    """SES's PUT (the SES API's import jobs): the row is the contact's whole state. Topic preferences it omits
    are gone, even where UpdateContact can only change them (the ses backend then replaces the contact)."""
    name = make_topics(TOPICS).name
    add(store, name, "gone@example.com", unsubscribe_all=True, topic_preferences={"news": OPT_OUT, "offers": OPT_IN})
    put = UpsertPolicy(replace_record=True)
    [result] = store.upsert_contacts(
        name, [ContactPatch("gone@example.com", topic_preferences={"events": OPT_IN})], put
    )
    assert (result.outcome, result.kept_unsubscribed, result.kept_opted_out) == (Outcome.UPDATED, False, False)
    assert _state(store, name, "gone@example.com") == (False, {"events": OPT_IN}, None)
    assert emails(all_pages(store, name)) == ["gone@example.com"]


@pytest.mark.needs("bulk")
def test_upsert_replace_record_clears_omitted_attributes(store: ContactStore, list_name: str) -> None:
    add(store, list_name, "a@example.com", attributes_data='{"a": 1}')
    put = UpsertPolicy(replace_record=True)
    [result] = store.upsert_contacts(list_name, [ContactPatch("a@example.com", unsubscribe_all=False)], put)
    assert result.outcome == Outcome.UPDATED
    assert _state(store, list_name, "a@example.com") == (False, {}, None)


@pytest.mark.needs("bulk")
def test_upsert_replaces_or_merges_attributes(store: ContactStore, list_name: str) -> None:
    add(store, list_name, "r@example.com", attributes_data='{"a": 1, "b": 2}')
    add(store, list_name, "m@example.com", attributes_data='{"a": 1, "b": 2}')
    store.upsert_contacts(list_name, [ContactPatch("r@example.com", attributes={"b": 3, "c": 4})], UpsertPolicy())
    store.upsert_contacts(
        list_name, [ContactPatch("m@example.com", attributes={"b": 3, "c": 4})], UpsertPolicy(merge_attributes=True)
    )
    assert store.get_contact(list_name, "r@example.com").attributes() == {"b": 3, "c": 4}
    assert store.get_contact(list_name, "m@example.com").attributes() == {"a": 1, "b": 3, "c": 4}
    # An explicit empty value clears them.
    store.upsert_contacts(list_name, [ContactPatch("r@example.com", attributes=None)], UpsertPolicy())
    assert store.get_contact(list_name, "r@example.com").attributes() is None


@pytest.mark.needs("case_insensitive_identity", "bulk")
def test_upsert_last_row_wins_within_a_batch(store: ContactStore, list_name: str) -> None:
    results = store.upsert_contacts(
        list_name,
        [
            ContactPatch("Dup@example.com", attributes={"v": 1}),
            ContactPatch("other@example.com"),
            ContactPatch("dup@EXAMPLE.com", attributes={"v": 2}, unsubscribe_all=True),
        ],
        UpsertPolicy(),
    )
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.CREATED, Outcome.UPDATED]
    assert emails(all_pages(store, list_name)) == ["Dup@example.com", "other@example.com"]
    assert _state(store, list_name, "dup@example.com") == (True, {}, {"v": 2})


@pytest.mark.needs("bulk")
def test_upsert_dry_run_reports_and_writes_nothing(store: ContactStore, list_name: str) -> None:
    add(store, list_name, "old@example.com", attributes_data='{"a": 1}')
    patches = [
        ContactPatch("new@example.com"),
        ContactPatch("old@example.com", attributes={"a": 2}),
        ContactPatch("new@example.com", unsubscribe_all=True),
    ]
    dry = store.upsert_contacts(list_name, patches, UpsertPolicy(), dry_run=True)
    assert [r.outcome for r in dry] == [Outcome.CREATED, Outcome.UPDATED, Outcome.UPDATED]
    assert emails(all_pages(store, list_name)) == ["old@example.com"]
    assert store.get_contact(list_name, "old@example.com").attributes() == {"a": 1}
    real = store.upsert_contacts(list_name, patches, UpsertPolicy())
    assert real == dry


@pytest.mark.needs("bulk")
def test_upsert_unknown_topic_is_refused(store: ContactStore, list_name: str) -> None:
    with pytest.raises(BadRequest) as exc:
        store.upsert_contacts(
            list_name, [ContactPatch("a@example.com", topic_preferences={"sports": OPT_IN})], UpsertPolicy()
        )
    assert exc.value.message == f"List: {list_name} doesn't contain Topic: sports"


@pytest.mark.needs("bulk")
def test_upsert_missing_fields_of_a_new_contact_take_defaults(store: ContactStore, list_name: str) -> None:
    store.upsert_contacts(list_name, [ContactPatch("a@example.com", unsubscribe_all=MISSING)], UpsertPolicy())
    assert _state(store, list_name, "a@example.com") == (False, {}, None)


@pytest.mark.needs("case_insensitive_identity", "bulk")
def test_bulk_delete_counts_not_found(store: ContactStore, list_name: str) -> None:
    for address in ("a@example.com", "b@example.com", "c@example.com"):
        add(store, list_name, address)
    targets = ["a@example.com", "nobody@example.com", "B@example.com", "a@example.com"]
    dry = store.delete_contacts(list_name, targets, dry_run=True)
    assert [r.outcome for r in dry] == [Outcome.DELETED, Outcome.NOT_FOUND, Outcome.DELETED, Outcome.NOT_FOUND]
    assert len(all_pages(store, list_name)) == 3
    assert store.delete_contacts(list_name, targets) == dry
    assert emails(all_pages(store, list_name)) == ["c@example.com"]


@pytest.mark.needs("bulk", "counts")
def test_bulk_writes_keep_counts_right(make_topics: Callable[..., ContactList], store: ContactStore) -> None:
    name = make_topics(TOPICS).name
    store.upsert_contacts(
        name,
        [ContactPatch(f"u{i}@example.com", unsubscribe_all=(i % 3 == 0)) for i in range(12)],
        UpsertPolicy(),
    )
    store.upsert_contacts(name, [ContactPatch("u0@example.com", unsubscribe_all=False)], UpsertPolicy(resubscribe=True))
    store.delete_contacts(name, ["u1@example.com", "u3@example.com", "zz@example.com"])
    stats = store.list_stats(name)
    everyone = all_pages(store, name)
    assert stats.total == len(everyone) == 10
    assert stats.unsubscribed == sum(c.unsubscribe_all for c in everyone) == 2
    assert store.count_contacts(name, ContactQuery(status=OPT_OUT)) == Count(2)
    assert store.count_contacts(name, ContactQuery(status=OPT_IN)) == Count(8)


# -- bulk actions on what a query matches ---------------------------------------------------------------


def _walk(
    store: ContactStore, name: str, query: ContactQuery, action: BulkAction, limit: int, topic: str | None = None
) -> list[MatchingStep]:
    """Every batch of an action, each starting after the last key the one before reached (as the job does)."""
    steps = [store.apply_to_matching(name, query, action, topic=topic, limit=limit)]
    while steps[-1].last_key is not None:
        after = steps[-1].last_key
        steps.append(store.apply_to_matching(name, query, action, topic=topic, after=after, limit=limit))
    return steps


@pytest.mark.needs("bulk", "counts")
def test_apply_to_matching_walks_the_matches_in_batches(
    make_topics: Callable[..., ContactList], store: ContactStore
) -> None:
    """Unsubscribe, resubscribe and delete all contacts a search matches, a batch at a time: counts say what
    changed, topic opt-outs stay, contacts outside the search are untouched, the list's counters stay exact."""
    name = make_topics(TOPICS).name
    patches = [
        ContactPatch(
            f"m{i:02d}@{'acme.com' if i % 2 else 'example.org'}",
            unsubscribe_all=i % 3 == 0,
            topic_preferences={"news": OPT_OUT} if i % 4 == 1 else {},
        )
        for i in range(14)
    ]
    store.upsert_contacts(name, patches, UpsertPolicy())
    acme = ContactQuery(domain="acme.com")  # m01 ... m13, odd: 7 contacts, m03 and m09 unsubscribed
    before = {c.email: c for c in all_pages(store, name)}

    dry = store.apply_to_matching(name, acme, "unsubscribe", dry_run=True)
    assert (dry.matched, dry.changed) == (7, 5)
    assert {c.email: c for c in all_pages(store, name)} == before  # a dry run writes nothing

    steps = _walk(store, name, acme, "unsubscribe", limit=3)
    assert [s.matched for s in steps] == [3, 3, 1] and sum(s.changed for s in steps) == 5
    after = {c.email: c for c in all_pages(store, name)}
    for email, contact in after.items():
        if email.endswith("@acme.com"):
            assert contact.unsubscribe_all and contact.topic_preferences == before[email].topic_preferences
        else:
            assert contact == before[email]
    assert store.apply_to_matching(name, acme, "unsubscribe").changed == 0  # already are

    resubscribed = store.apply_to_matching(name, acme, "resubscribe", limit=100)
    assert (resubscribed.matched, resubscribed.changed, resubscribed.last_key) == (7, 7, None)
    assert store.get_contact(name, "m05@acme.com").topic_preferences == {"news": OPT_OUT}
    stats = store.list_stats(name)
    everyone = all_pages(store, name)
    assert stats.unsubscribed == sum(c.unsubscribe_all for c in everyone) == 3  # m00, m06, m12

    deleted = _walk(store, name, acme, "delete", limit=4)
    assert [(s.matched, s.changed) for s in deleted] == [(4, 4), (3, 3)]
    stats = store.list_stats(name)
    everyone = all_pages(store, name)
    assert emails(everyone) == [f"m{i:02d}@example.org" for i in range(0, 14, 2)]
    assert (stats.total, stats.unsubscribed) == (7, sum(c.unsubscribe_all for c in everyone))
    assert store.count_contacts(name, ContactQuery(status=OPT_OUT)) == Count(stats.unsubscribed)


@pytest.mark.needs("bulk")
def test_apply_to_matching_leaves_contacts_created_after_the_bound(store: ContactStore, list_name: str) -> None:
    """The job's snapshot: a contact created after the user confirmed is not acted on, though it matches."""
    first = add(store, list_name, "a@example.com")
    later = add(store, list_name, "b@example.com")
    assert later.created > first.created
    step = store.apply_to_matching(list_name, ContactQuery(), "delete", created_before=first.created)
    assert (step.matched, step.changed, step.last_key) == (1, 1, None)
    assert emails(all_pages(store, list_name)) == ["b@example.com"]


@pytest.mark.needs("bulk", "counts")
def test_apply_to_matching_opts_in_and_out_of_a_topic(
    make_topics: Callable[..., ContactList], store: ContactStore
) -> None:
    """Opt what a search matches in to (or out of) one topic: each contact's own preference for it is set and
    nothing else changes (other topics, attributes, unsubscribe-all: opting in never resubscribes). The dry run
    says how many had opted out of the topic themselves and how many are unsubscribed from all. A topic default
    is no choice of the contact's: one that the default opted in gets the choice, and counts as changed."""
    name = make_topics(TOPICS).name  # news: OPT_IN by default, offers: OPT_OUT, events: OPT_IN
    for contact in (
        Contact("a@acme.com", topic_preferences={"offers": OPT_OUT, "events": OPT_OUT}, attributes_data='{"n": 1}'),
        Contact("b@acme.com", topic_preferences={"offers": OPT_IN}),
        Contact("c@acme.com", unsubscribe_all=True, attributes_data='{"n": 3}'),
        Contact("d@acme.com", unsubscribe_all=True, topic_preferences={"offers": OPT_OUT, "news": OPT_OUT}),
        Contact("e@acme.com"),
        Contact("z@example.org", topic_preferences={"offers": OPT_OUT}),
    ):
        store.create_contact(name, contact)
    acme = ContactQuery(domain="acme.com")
    before = {c.email: c for c in all_pages(store, name)}

    dry = store.apply_to_matching(name, acme, "topic_opt_in", topic="offers", dry_run=True)
    assert (dry.matched, dry.changed, dry.opted_out, dry.unsubscribed) == (5, 4, 2, 2)  # b already opted in
    assert {c.email: c for c in all_pages(store, name)} == before

    steps = _walk(store, name, acme, "topic_opt_in", limit=2, topic="offers")
    assert [s.matched for s in steps] == [2, 2, 1] and sum(s.changed for s in steps) == 4
    for email, contact in {c.email: c for c in all_pages(store, name)}.items():
        old = before[email]
        if email.endswith("@acme.com"):
            assert dict(contact.topic_preferences) == {**old.topic_preferences, "offers": OPT_IN}
            assert (contact.unsubscribe_all, contact.attributes_data) == (old.unsubscribe_all, old.attributes_data)
        else:
            assert contact == old
    assert store.apply_to_matching(name, acme, "topic_opt_in", topic="offers").changed == 0  # already are
    opted_in = ContactQuery(status=OPT_IN, topic=TopicFilter("offers"))  # unsubscribe-all still wins
    assert emails(all_pages(store, name, opted_in)) == ["a@acme.com", "b@acme.com", "e@acme.com"]

    # news is OPT_IN by default: e had no choice of its own, now has one (a later default change leaves it be)
    news = store.apply_to_matching(name, ContactQuery(email_prefix="e@"), "topic_opt_in", topic="news")
    assert (news.matched, news.changed) == (1, 1)
    assert dict(store.get_contact(name, "e@acme.com").topic_preferences) == {"offers": OPT_IN, "news": OPT_IN}

    out = store.apply_to_matching(name, acme, "topic_opt_out", topic="offers", limit=100)
    assert (out.matched, out.changed, out.last_key) == (5, 5, None)
    assert store.count_contacts(name, ContactQuery(status=OPT_OUT, topic=TopicFilter("offers"))) == Count(6)
    assert dict(store.get_contact(name, "d@acme.com").topic_preferences) == {"offers": OPT_OUT, "news": OPT_OUT}
    assert store.get_contact(name, "c@acme.com").attributes_data == '{"n": 3}'
    stats = store.list_stats(name)
    assert (stats.total, stats.unsubscribed) == (6, 2)

    with pytest.raises(BadRequest, match="doesn't contain Topic: nosuch"):
        store.apply_to_matching(name, acme, "topic_opt_in", topic="nosuch")
    with pytest.raises(ValueError):
        store.apply_to_matching(name, acme, "topic_opt_in")  # a topic action names its topic
    with pytest.raises(ValueError):
        store.apply_to_matching(name, acme, "unsubscribe", topic="offers")


def test_errors_carry_ses_codes(store: ContactStore) -> None:
    """Every error the store raises is one the SES API can render as SES would."""
    with pytest.raises(SesContactsError) as exc:
        store.get_list("nosuch")
    assert (exc.value.code, exc.value.status) == ("NotFoundException", 404)


@pytest.mark.needs("bulk")
def test_atomic_commits_together_or_the_store_says_it_cannot(store: ContactStore, list_name: str) -> None:
    """``transactional``: a block that raises leaves nothing; otherwise each write stood as it was made."""

    class Stop(Exception):
        pass

    with pytest.raises(Stop), store.atomic():
        store.upsert_contacts(list_name, [ContactPatch("atomic@example.com")], UpsertPolicy())
        raise Stop
    if store.transactional:
        with pytest.raises(NotFound):
            store.get_contact(list_name, "atomic@example.com")
    else:
        assert store.get_contact(list_name, "atomic@example.com").email == "atomic@example.com"


def test_export_rows_match_the_paged_export(store: ContactStore, list_name: str) -> None:
    """A backend's own export rendering (or none) writes exactly what paging through list_contacts writes."""
    import io

    from sescontacts.bulk.exporter import export, export_pages

    add(store, list_name, "b@example.com", attributes_data='{"n": 1}')
    add(store, list_name, "=a@example.com", unsubscribe_all=True)
    for fmt in ("csv", "json"):
        fast, paged = io.BytesIO(), io.BytesIO()
        assert export(store, list_name, ContactQuery(), fmt, fast) == 2
        export_pages(store, list_name, ContactQuery(), fmt, paged)
        assert fast.getvalue() == paged.getvalue()
