"""Contact operations: Create/Get/Update/Delete/ListContacts (POST ``/contacts/list`` and the legacy GET).

UpdateContact replaces UnsubscribeAll and AttributesData (omitted = false / cleared). Its TopicPreferences are
disputed (contract §7, "Conflicts"): a probe of real SES saw them merge by topic name, which is the default
(``--ses-semantics observed``); the current API reference says omitted preferences are removed
(``--ses-semantics documented``).
"""

from __future__ import annotations

from typing import Any

from ..model import SUBSCRIPTION_STATUSES, Contact, ContactQuery, TopicFilter
from ..ses_wire import contact_items_to_ses, contact_to_ses
from ..settings import OBSERVED
from .codec import ApiRequest
from .routing import operation
from .shapes import read_preferences

CONTACTS = "/v2/email/contact-lists/{ContactListName}/contacts"
CONTACT = "/v2/email/contact-lists/{ContactListName}/contacts/{EmailAddress}"


@operation("CreateContact", "POST", CONTACTS)
def create_contact(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    email = body.string("EmailAddress", required=True)
    preferences = read_preferences(body.structures("TopicPreferences"))
    unsubscribe_all = body.boolean("UnsubscribeAll")
    attributes = body.string("AttributesData")
    request.check()
    contact = Contact(
        email=email or "",
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
    contact = store.get_contact(list_name, request.label("EmailAddress"))
    return contact_to_ses(contact, store.get_list(list_name))


@operation("UpdateContact", "PUT", CONTACT)
def update_contact(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    preferences = read_preferences(body.structures("TopicPreferences"))
    unsubscribe_all = body.boolean("UnsubscribeAll")
    attributes = body.string("AttributesData")
    request.check()
    contact = Contact(
        email=request.label("EmailAddress"),
        unsubscribe_all=bool(unsubscribe_all),
        topic_preferences=preferences,
        attributes_data=attributes,
    )
    merge = request.services.settings.ses_semantics == OBSERVED
    request.store.update_contact(request.label("ContactListName"), contact, merge_topic_preferences=merge)
    return {}


@operation("DeleteContact", "DELETE", CONTACT)
def delete_contact(request: ApiRequest) -> dict[str, Any]:
    request.store.delete_contact(request.label("ContactListName"), request.label("EmailAddress"))
    return {}


def _list_contacts(request: ApiRequest, page_size: int | None, token: str | None) -> dict[str, Any]:
    query = ContactQuery()
    filter_ = request.body.structure("Filter")
    if filter_ is not None:
        status = filter_.enum("FilteredStatus", SUBSCRIPTION_STATUSES)
        topic_filter = filter_.structure("TopicFilter")
        topic = None
        if topic_filter is not None:
            topic_name = topic_filter.string("TopicName")
            use_default = topic_filter.boolean("UseDefaultIfPreferenceUnavailable")
            if topic_name is not None:
                topic = TopicFilter(topic_name, bool(use_default))
        query = ContactQuery(status=status, topic=topic)
    request.check()
    store = request.store
    list_name = request.label("ContactListName")
    contact_list = store.get_list(list_name)
    page = store.list_contacts(list_name, query, page_size=page_size, token=token)
    result: dict[str, Any] = {"Contacts": contact_items_to_ses(page.items, contact_list)}
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
