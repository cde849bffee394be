"""Contact operations: Create/Get/Update/Delete/ListContacts (POST ``/contacts/list`` and the legacy GET).

UpdateContact replaces UnsubscribeAll and AttributesData (omitted = false / cleared). Its TopicPreferences are
disputed (contract §7, "Conflicts"): a probe of real SES saw them merge by topic name, which is the default
(``--ses-semantics observed``); the current API reference says omitted preferences are removed
(``--ses-semantics documented``).

Checks come in SES's order (probed, floci's SesContactService and SesContactFilterTest): the protocol's
(types, missing members, enums), then the address's format (the path's too, before the list or the contact
is looked up), then the list name's, then the list's existence, then the topics'. ListContacts: enums, page
size, the filter's shape, the token, the list, the filter's topic.
"""

from __future__ import annotations

from typing import Any, Final

from ..errors import BadRequest
from ..model import SUBSCRIPTION_STATUSES, Contact, ContactQuery, TopicFilter
from ..ses_wire import contact_items_to_ses, contact_to_ses
from ..settings import OBSERVED
from ..store.base import check_page_size
from ..store.tokens import INVALID_TOKEN
from ..validation import check_email
from .codec import ApiRequest
from .routing import operation
from .shapes import read_preferences

CONTACTS = "/v2/email/contact-lists/{ContactListName}/contacts"
CONTACT = "/v2/email/contact-lists/{ContactListName}/contacts/{EmailAddress}"
# ListContacts' page without a PageSize: SES's default (probed), though the stores' own default is larger.
DEFAULT_PAGE_SIZE: Final = 50


def _path_address(request: ApiRequest) -> str:
    """The address in the path, refused as SES refuses it (an empty one is blank) before any lookup."""
    return check_email(request.label("EmailAddress"))


@operation("CreateContact", "POST", CONTACTS)
def create_contact(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    email = body.string("EmailAddress", required=True)
    preferences = read_preferences(body.structures("TopicPreferences"))
    unsubscribe_all = body.boolean("UnsubscribeAll")
    attributes = body.string("AttributesData")
    request.check()
    contact = Contact(
        email=check_email(email),
        unsubscribe_all=bool(unsubscribe_all),
        topic_preferences=preferences,
        attributes_data=attributes,
    )
    request.store.create_contact(request.label("ContactListName"), contact)
    return {}


@operation("GetContact", "GET", CONTACT)
def get_contact(request: ApiRequest) -> dict[str, Any]:
    store = request.store
    list_name = request.label("ContactListName")
    contact = store.get_contact(list_name, _path_address(request))
    return contact_to_ses(contact, store.get_list(list_name))


@operation("UpdateContact", "PUT", CONTACT)
def update_contact(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    preferences = read_preferences(body.structures("TopicPreferences"))
    unsubscribe_all = body.boolean("UnsubscribeAll")
    attributes = body.string("AttributesData")
    request.check()
    contact = Contact(
        email=_path_address(request),
        unsubscribe_all=bool(unsubscribe_all),
        topic_preferences=preferences,
        attributes_data=attributes,
    )
    merge = request.services.settings.ses_semantics == OBSERVED
    request.store.update_contact(request.label("ContactListName"), contact, merge_topic_preferences=merge)
    return {}


@operation("DeleteContact", "DELETE", CONTACT)
def delete_contact(request: ApiRequest) -> dict[str, Any]:
    request.store.delete_contact(request.label("ContactListName"), _path_address(request))
    return {}


def _filter(request: ApiRequest) -> ContactQuery | None:
    """The body's ``Filter`` with its protocol checks collected (``request.check()`` raises them); None when
    there is none. A filter SES refuses for its shape is refused after the page size, as SES does."""
    filter_ = request.body.structure("Filter")
    if filter_ is None:
        return None
    status = filter_.enum("FilteredStatus", SUBSCRIPTION_STATUSES)
    topic_filter = filter_.structure("TopicFilter")
    topic: TopicFilter | None = None
    if topic_filter is not None:
        topic_name = topic_filter.string("TopicName")
        use_default = topic_filter.boolean("UseDefaultIfPreferenceUnavailable")
        topic = TopicFilter(topic_name or "", bool(use_default))
    return ContactQuery(status=status, topic=topic)


def _check_filter_shape(query: ContactQuery) -> None:
    """What SES refuses in a filter once its members have the right types (messages as probed)."""
    if query.status is None:
        raise BadRequest("Invalid FilteredStatus <null>", field="FilteredStatus")
    if query.topic is not None and not query.topic.topic.strip():
        raise BadRequest("TopicName can't be blank in TopicFilter.", field="TopicName")


def _list_contacts(request: ApiRequest, page_size: int | None, token: str | None) -> dict[str, Any]:
    query = _filter(request)
    request.check()
    size = check_page_size(DEFAULT_PAGE_SIZE if page_size is None else page_size)
    if query is not None:
        _check_filter_shape(query)
    if token == "":
        raise BadRequest(INVALID_TOKEN, field="NextToken")
    store = request.store
    list_name = request.label("ContactListName")
    page = store.list_contact_items(list_name, query or ContactQuery(), page_size=size, token=token)
    result: dict[str, Any] = {"Contacts": contact_items_to_ses(page.items, store.get_list(list_name))}
    if page.next_token:
        result["NextToken"] = page.next_token
    return result


@operation("ListContacts", "POST", CONTACTS + "/list")
def list_contacts(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    return _list_contacts(request, body.integer("PageSize"), body.string("NextToken"))


@operation("ListContactsLegacy", "GET", CONTACTS)
def list_contacts_legacy(request: ApiRequest) -> dict[str, Any]:
    """botocore <= 1.34.95 sent ListContacts as GET with PageSize/NextToken in the query and Filter in the body."""
    return _list_contacts(request, request.query_integer("PageSize"), request.query_string_value("NextToken"))
