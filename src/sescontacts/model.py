"""Plain records for contact lists, topics and contacts, and the pure rules that combine them.

Nothing here does I/O. The SES API layer, the console, the importer and both stores build on these types,
so the rules SES applies (default topic preferences, what a filter matches, how an import row changes a
contact) are written once, here.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Generic, Literal, NamedTuple, TypeVar, overload

import orjson


def email_key(address: str) -> str:
    """The identity of an address in a list: ``A@x.com`` and ``a@x.com`` are one person, and so are the
    composed and decomposed spellings of ``é`` (NFC), which look identical and arrive from copy-pasting.
    The address itself keeps the spelling it was first written with. (``lower``, not ``casefold``: the
    latter would make ``straße@`` and ``strasse@`` one mailbox.)"""
    if address.isascii():
        return address.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", address).lower())


# Between the folded address and the exact one in an exact key: below every character an address can hold, so
# exact keys sort as their folded addresses do, and a folded address's spellings are one range of keys.
SPELLING_SEPARATOR: Final = "\x01"


def exact_email_key(address: str) -> str:
    """The identity of an address where every spelling is its own contact, as SES may have it: the folded
    address (:func:`email_key`), then the address exactly as written. Pages in key order therefore still list
    addresses case-insensitively, with the spellings of one address side by side."""
    return f"{email_key(address)}{SPELLING_SEPARATOR}{address}"


@dataclass(frozen=True, slots=True)
class AddressIdentity:
    """When two addresses are one contact: the rule a store files its contacts by, as the key it computes.

    ``folded`` is the local backend's product choice (case and Unicode composition ignored: one person, one
    contact). ``exact`` is SES's possible rule, which the ses backend's mirror must follow so that it never
    merges two contacts SES keeps apart. ``name`` is recorded with the keys in the database."""

    name: Literal["folded", "exact"]
    key: Callable[[str], str]


FOLDED: Final = AddressIdentity("folded", email_key)
EXACT: Final = AddressIdentity("exact", exact_email_key)
# By name: the importer's parser process is told the rule by its name.
IDENTITIES: Final[dict[str, AddressIdentity]] = {FOLDED.name: FOLDED, EXACT.name: EXACT}


OPT_IN: Final = "OPT_IN"
OPT_OUT: Final = "OPT_OUT"
SubscriptionStatus = Literal["OPT_IN", "OPT_OUT"]
SUBSCRIPTION_STATUSES: Final = (OPT_IN, OPT_OUT)


@dataclass(frozen=True, slots=True)
class Topic:
    """A subject a contact can opt in to or out of, with the status a contact has until they choose."""

    name: str
    display_name: str
    default_status: str = OPT_OUT
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ContactList:
    """SES allows one list per account and region; its topics are what contacts subscribe to."""

    name: str
    topics: tuple[Topic, ...] = ()
    description: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    created: float = 0.0
    updated: float = 0.0

    def topic(self, name: str) -> Topic | None:
        for topic in self.topics:
            if topic.name == name:
                return topic
        return None

    @property
    def topic_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topics)


@dataclass(frozen=True, slots=True)
class Contact:
    """One address on a list.

    ``attributes_data`` is kept as the text SES stores (a JSON object written by the console and the
    importer; whatever SES accepts when written through the SES API), so it round-trips byte for byte.
    ``topic_preferences`` holds only explicit choices; defaults come from the list's topics.
    """

    email: str
    unsubscribe_all: bool = False
    topic_preferences: Mapping[str, str] = field(default_factory=dict)
    attributes_data: str | None = None
    created: float = 0.0
    updated: float = 0.0

    def default_preferences(self, contact_list: ContactList) -> dict[str, str]:
        """TopicDefaultPreferences as SES derives them: every topic without an explicit choice."""
        return {t.name: t.default_status for t in contact_list.topics if t.name not in self.topic_preferences}

    def effective_status(self, topic: Topic, *, use_default: bool = True) -> str | None:
        """What this contact gets for ``topic``: unsubscribe-all wins, then the explicit choice, then the default."""
        if self.unsubscribe_all:
            return OPT_OUT
        explicit = self.topic_preferences.get(topic.name)
        if explicit is not None:
            return explicit
        return topic.default_status if use_default else None

    def attributes(self) -> dict[str, object] | None:
        """The attributes as an object, or None when unset or not a JSON object (possible via the SES API)."""
        return attributes_object(self.attributes_data)

    def same_state(self, other: Contact) -> bool:
        """Whether a write would change nothing a user can see: attributes compare as JSON, not as text,
        so ``{"a": 1}`` and ``{"a":1}`` are the same and re-importing a file reports "unchanged"."""
        return (
            self.email == other.email
            and self.unsubscribe_all == other.unsubscribe_all
            and dict(self.topic_preferences) == dict(other.topic_preferences)
            and same_attributes(self.attributes_data, other.attributes_data)
        )


class ListedContact(NamedTuple):
    """A contact as SES's ListContacts shows it: no attributes, no creation time. A store's page of these
    (``ContactStore.list_contact_items``) costs a tuple a row where a :class:`Contact` costs a dataclass and a
    preferences dict: the SES API's listing pages a million contacts through it."""

    email: str
    unsubscribe_all: bool
    topic_preferences: Mapping[str, str]
    updated: float


@dataclass(frozen=True, slots=True)
class TopicFilter:
    topic: str
    use_default: bool = False


@dataclass(frozen=True, slots=True)
class AttributeCondition:
    """One attribute condition of a search: ``key`` alone means "has this key" (any value, null included);
    with ``value``, "key = value", a string attribute matching when the two are equal after Unicode case
    folding (``str.casefold``: ``acme inc`` finds ``ACME Inc``, ``strasse`` finds ``Straße``), or exactly
    when ``exact``; a number, boolean, null or nested value when its JSON text equals ``value`` (folding
    them would make ``[\"A\"]`` find ``[\"a\"]``, which nobody asked for)."""

    key: str
    value: str | None = None
    exact: bool = False


@dataclass(frozen=True, slots=True)
class ContactQuery:
    """Which contacts to show. ``status``/``topic`` are SES's ListContacts filter; the rest is ours, and every
    condition given must hold (AND).

    ``status`` without ``topic`` selects on unsubscribe-all (OPT_OUT = unsubscribed from everything).
    ``email_contains`` matches a substring of the address's :func:`email_key` (so case-insensitively),
    ``email_prefix`` its start; ``domain`` the part after @. ``attributes``: see :class:`AttributeCondition`.
    """

    status: str | None = None
    topic: TopicFilter | None = None
    email_contains: str | None = None
    email_prefix: str | None = None
    domain: str | None = None
    attributes: tuple[AttributeCondition, ...] = ()
    sort: Literal["email", "updated"] = "email"
    # Ours, from outside the list: on the account's suppression list, or with a permanent bounce or a
    # complaint recorded (suppression.DELIVERY_FILTERS); ``matches`` is told which addresses are.
    delivery: str | None = None

    @property
    def is_ses_filter_only(self) -> bool:
        return self.sort == "email" and not (
            self.email_contains or self.email_prefix or self.domain or self.attributes or self.delivery
        )

    def matches(self, contact: Contact, contact_list: ContactList, *, marked: Container[str] = ()) -> bool:
        """The reference semantics the SQL in the stores must agree with (and the tests check against);
        ``marked``: the folded addresses the ``delivery`` filter holds."""
        if self.delivery and email_key(contact.email) not in marked:
            return False
        if self.topic is not None:
            topic = contact_list.topic(self.topic.topic)
            if topic is None:
                return False
            status = contact.effective_status(topic, use_default=self.topic.use_default)
            if status is None or (self.status is not None and status != self.status):
                return False
        elif self.status is not None and contact.unsubscribe_all != (self.status == OPT_OUT):
            return False
        key = email_key(contact.email)
        if self.email_contains and email_key(self.email_contains) not in key:
            return False
        if self.email_prefix and not key.startswith(email_key(self.email_prefix)):
            return False
        if self.domain and key.rpartition("@")[2] != email_key(self.domain).lstrip("@"):
            return False
        return all(attributes_match(contact.attributes_data, c.key, c.value, exact=c.exact) for c in self.attributes)


# How deeply attributes may nest objects and arrays, the outer object being level 1. Contact attributes are
# names, flags and small records; 32 levels is far past any real use, yet far inside what the code relies
# on: orjson writes at most 254 levels and reads at most 1024, SQLite's JSON functions stop at 1000, and
# comparing or walking a value recurses in Python (limit 1000). Every surface that writes attributes
# refuses more (validation.py); a value stored before the limit existed is read as raw text.
MAX_ATTRIBUTES_DEPTH: Final = 32

# A JSON string (brackets inside it are text) or one bracket.
_NESTING_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def nesting_exceeds(text: str, limit: int = MAX_ATTRIBUTES_DEPTH) -> bool:
    """Whether JSON ``text`` nests objects and arrays more than ``limit`` levels deep, without parsing it.

    Works on any text (the SES API stores AttributesData that is not JSON), at C speed for the usual value:
    text with at most ``limit`` opening brackets cannot nest deeper, so two counts decide.
    """
    if text.count("{") + text.count("[") <= limit:
        return False
    depth = 0
    for match in _NESTING_TOKEN.finditer(text):
        token = match.group()
        if token == "{" or token == "[":
            depth += 1
            if depth > limit:
                return True
        elif token == "}" or token == "]":
            depth -= 1
    return False


def value_nesting_exceeds(value: object, limit: int = MAX_ATTRIBUTES_DEPTH) -> bool:
    """:func:`nesting_exceeds` for a parsed value (an import file's attributesData object), without recursion:
    ijson builds values of any depth, and Python's own recursion stops at 1000."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def attributes_object(text: str | None) -> dict[str, object] | None:
    """Attributes text as an object, or None when unset, not JSON, not an object (possible via the SES API),
    or nested past MAX_ATTRIBUTES_DEPTH (stored before the limit existed): such text is shown, exported and
    kept as it is, but never parsed into a value that cannot be written back or compared safely."""
    if not text or nesting_exceeds(text):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def attributes_match(text: str | None, key: str, value: str | None, *, exact: bool = False) -> bool:
    """The attribute search (:class:`AttributeCondition`): ``key`` present (any value, null included), and
    when ``value`` is given, the value equal to it (:func:`attribute_search_text`, folded unless ``exact``).
    The local store runs this very function inside SQLite, so a search means the same whatever wrote the text
    (duplicate keys, escapes, number spellings)."""
    attributes = attributes_object(text)
    if attributes is None or key not in attributes:
        return False
    if value is None:
        return True
    found = attributes[key]
    if exact or not isinstance(found, str):
        return attribute_text(found) == value
    return found.casefold() == value.casefold()


def attribute_search_text(value: object) -> str:
    """A value as the search index files it: a string case-folded, any other value its JSON text (numbers,
    booleans and null already fold to themselves). A case-insensitive ``key = value`` is then the entries
    equal to ``value.casefold()``, or ``value`` itself for a nested one; an exact one is among them."""
    return value.casefold() if isinstance(value, str) else attribute_text(value)


def _canonical_attributes(text: str | None) -> bytes | None:
    """A comparable form of attributes text: key order and spacing ignored; None when unset.

    Text that is not a JSON object (possible through the SES API), or nests past the limit, compares as itself.
    """
    if not text:
        return None
    value = attributes_object(text)
    if value is None:
        return text.encode()
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def same_attributes(a: str | None, b: str | None) -> bool:
    return a == b or _canonical_attributes(a) == _canonical_attributes(b)


def attribute_text(value: object) -> str:
    """How an attribute value is shown and compared in searches: strings as they are, others as JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class Count:
    """A count that may stop at a cap so that a search never scans the whole list to show a number."""

    value: int
    exact: bool = True


@dataclass(frozen=True, slots=True)
class TopicCounts:
    topic: str
    opt_in: int
    opt_out: int


@dataclass(frozen=True, slots=True)
class DayCounts:
    """What happened to a list on one UTC day: contacts added, removed, and existing contacts that turned
    unsubscribe-all on (a contact added already unsubscribed counts as added only)."""

    day: str
    added: int = 0
    removed: int = 0
    unsubscribed: int = 0


@dataclass(frozen=True, slots=True)
class ListStats:
    total: int
    unsubscribed: int
    topics: tuple[TopicCounts, ...] = ()
    per_day: tuple[DayCounts, ...] = ()  # the days that had any, oldest first

    @property
    def subscribed(self) -> int:
        return self.total - self.unsubscribed


class Missing(enum.Enum):
    """Marks a field an import row did not give, as distinct from one it gave as empty."""

    MISSING = "MISSING"


MISSING: Final = Missing.MISSING


@dataclass(frozen=True, slots=True)
class ContactPatch:
    """What one import row says about a contact; MISSING fields leave the stored value as it is."""

    email: str
    unsubscribe_all: bool | Missing = MISSING
    attributes: dict[str, object] | Missing | None = MISSING
    topic_preferences: Mapping[str, str] = field(default_factory=dict)


# A PatchBatch row's unsubscribe code when the row gave none, and its attributes text when it gave none (the
# text of an object is never empty).
UNSUBSCRIBE_MISSING: Final = -1
ATTRIBUTES_MISSING: Final = ""


@dataclass(frozen=True, slots=True, eq=False)
class PatchBatch(Sequence[ContactPatch]):
    """Import rows as columns, as the importer's parser (a process of its own) hands them to a store.

    Row ``i`` is the patch ``emails[i]`` with ``unsubscribe[i]`` (1, 0 or UNSUBSCRIBE_MISSING), ``attributes[i]``
    (the object as the JSON text :func:`dump_attributes` writes for it, None to clear, ATTRIBUTES_MISSING for
    none given) and ``topics[i]`` (``topics`` is None when no row names a topic). ``keys[i]`` is the address's
    key under the rule named ``identity``; ``distinct`` says no key appears twice, ``ordered`` that the rows
    are in key order (rows with one key keep their file order). A store that knows the columns writes them
    as they are (a million rows never become a million patch objects); any other reads the patches.
    """

    identity: str
    keys: list[str]
    emails: list[str]
    unsubscribe: list[int]
    attributes: list[str | None]
    topics: list[dict[str, str]] | None = None
    distinct: bool = False
    ordered: bool = False

    def __len__(self) -> int:
        return len(self.emails)

    @overload
    def __getitem__(self, index: int) -> ContactPatch: ...
    @overload
    def __getitem__(self, index: slice) -> list[ContactPatch]: ...
    def __getitem__(self, index: int | slice) -> ContactPatch | list[ContactPatch]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        unsubscribe = self.unsubscribe[index]
        text = self.attributes[index]
        return ContactPatch(
            self.emails[index],
            MISSING if unsubscribe == UNSUBSCRIBE_MISSING else bool(unsubscribe),
            MISSING if text == ATTRIBUTES_MISSING else None if text is None else orjson.loads(text),
            self.topics[index] if self.topics is not None else {},
        )

    def __iter__(self) -> Iterator[ContactPatch]:
        return (self[i] for i in range(len(self)))


@dataclass(frozen=True, slots=True, eq=False)
class AddressBatch(Sequence[str]):
    """Addresses to delete, as the importer's parser hands them over: with their keys under the rule named
    ``identity`` (so a store that files them by that rule need not compute them again), in key order."""

    identity: str
    keys: list[str]
    emails: list[str]

    def __len__(self) -> int:
        return len(self.emails)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self.emails[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self.emails)


@dataclass(frozen=True, slots=True)
class UpsertPolicy:
    """How an import row changes a contact that exists.

    The product's rule (the console's Import dialog, ``sescontacts import``, bulk actions): fields the row
    omits keep their value, topic preferences merge by topic, and the row never undoes a choice to leave:
    neither unsubscribe-all nor an explicit topic OPT_OUT (``resubscribe`` lifts both guards).
    ``merge_attributes`` merges the row's attribute keys into the stored object instead of replacing it.

    ``existing_only``: a row for an address the list does not hold is NOT_FOUND, nothing created. Bulk actions
    on contacts a page listed use it: one deleted since (another tab, the API, a sync) is not brought back.

    ``replace_record`` is SES's PUT import instead ("If the record already exists, it will override it with the
    new value"): the row is the contact's whole state, what it omits is cleared, no guard applies. Only import
    jobs created through the SES API use it.
    """

    resubscribe: bool = False
    merge_attributes: bool = False
    replace_record: bool = False
    existing_only: bool = False


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    NOT_FOUND = "not_found"
    REFUSED = "refused"  # the backend did not apply the row after all (``RowResult.reason`` says why)


@dataclass(frozen=True, slots=True)
class RowResult:
    """One bulk row's outcome. A REFUSED row was not written: the backend refused it (an SES import job's
    failed record), ``reason`` saying why in words a report can show; the batch's other rows stand.
    ``kept_unsubscribed`` / ``kept_opted_out``: the product's guard held back part of the row (its other
    fields still applied)."""

    outcome: Outcome
    kept_unsubscribed: bool = False
    reason: str | None = None
    kept_opted_out: bool = False  # the row's OPT_IN for a topic the contact explicitly opted out of was not applied


def dump_attributes(attributes: Mapping[str, object] | None) -> str | None:
    return None if attributes is None else orjson.dumps(attributes).decode()


@overload
def apply_patch(
    existing: Contact, patch: ContactPatch, policy: UpsertPolicy, now: float
) -> tuple[Contact, RowResult]: ...
@overload
def apply_patch(
    existing: Contact | None, patch: ContactPatch, policy: UpsertPolicy, now: float
) -> tuple[Contact | None, RowResult]: ...
def apply_patch(
    existing: Contact | None, patch: ContactPatch, policy: UpsertPolicy, now: float
) -> tuple[Contact | None, RowResult]:
    """The import's add (upsert) rule for one row, shared by both stores (see :class:`UpsertPolicy`).

    Unless ``policy.resubscribe``, an unsubscribed contact is never re-subscribed and an explicit topic OPT_OUT
    never becomes OPT_IN: a sender must not undo an unsubscribe by re-importing an old spreadsheet. A topic the
    contact never chose is not protected (its list default applies until the row chooses).
    """
    if existing is None and policy.existing_only:
        return None, RowResult(Outcome.NOT_FOUND)
    if existing is None:
        attributes = None if patch.attributes is MISSING else patch.attributes
        contact = Contact(
            email=patch.email,
            unsubscribe_all=bool(patch.unsubscribe_all) if patch.unsubscribe_all is not MISSING else False,
            topic_preferences=dict(patch.topic_preferences),
            attributes_data=dump_attributes(attributes),
            created=now,
            updated=now,
        )
        return contact, RowResult(Outcome.CREATED)
    if policy.replace_record:
        return _replace_record(existing, patch, now)

    kept = False
    unsubscribe_all = existing.unsubscribe_all
    if patch.unsubscribe_all is not MISSING:
        if existing.unsubscribe_all and not patch.unsubscribe_all and not policy.resubscribe:
            kept = True
        else:
            unsubscribe_all = patch.unsubscribe_all
    attributes_data = existing.attributes_data
    if patch.attributes is not MISSING:
        if policy.merge_attributes and patch.attributes is not None:
            merged = dict(existing.attributes() or {})
            merged.update(patch.attributes)
            attributes_data = dump_attributes(merged)
        else:
            attributes_data = dump_attributes(patch.attributes)
        if same_attributes(attributes_data, existing.attributes_data):
            attributes_data = existing.attributes_data  # same object: keep the text as the user wrote it
    preferences = dict(existing.topic_preferences)
    kept_out = False
    for topic, status in patch.topic_preferences.items():
        if status == OPT_IN and preferences.get(topic) == OPT_OUT and not policy.resubscribe:
            kept_out = True
        else:
            preferences[topic] = status
    candidate = replace(
        existing,
        unsubscribe_all=unsubscribe_all,
        attributes_data=attributes_data,
        topic_preferences=preferences,
    )
    if candidate.same_state(existing):
        return existing, RowResult(Outcome.UNCHANGED, kept, kept_opted_out=kept_out)
    return replace(candidate, updated=now), RowResult(Outcome.UPDATED, kept, kept_opted_out=kept_out)


def _replace_record(existing: Contact, patch: ContactPatch, now: float) -> tuple[Contact, RowResult]:
    """SES's PUT over an existing contact: the row, with its omitted fields cleared (unsubscribe-all false,
    no attributes, no topic preferences). The address keeps its stored spelling (one contact per address)."""
    attributes_data = None if patch.attributes is MISSING else dump_attributes(patch.attributes)
    if same_attributes(attributes_data, existing.attributes_data):
        attributes_data = existing.attributes_data
    candidate = replace(
        existing,
        unsubscribe_all=patch.unsubscribe_all is True,
        attributes_data=attributes_data,
        topic_preferences=dict(patch.topic_preferences),
    )
    if candidate.same_state(existing):
        return existing, RowResult(Outcome.UNCHANGED)
    return replace(candidate, updated=now), RowResult(Outcome.UPDATED)
