"""Contact-list operations: Create/Get/Update/Delete/ListContactLists. Protocol checks here, rules in the store."""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest
from ..ses_wire import list_item_to_ses, list_to_ses
from ..settings import OBSERVED
from ..store.base import check_page_size
from ..store.tokens import INVALID_TOKEN
from .codec import ApiRequest
from .routing import operation
from .shapes import read_tags, read_topics

LISTS = "/v2/email/contact-lists"
LIST = "/v2/email/contact-lists/{ContactListName}"


@operation("CreateContactList", "POST", LISTS)
def create_contact_list(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    name = body.string("ContactListName", required=True)
    topics = read_topics(body.structures("Topics"))
    description = body.string("Description")
    tags = read_tags(body.structures("Tags"))
    request.check()
    request.store.create_list(name or "", topics=topics or (), description=description, tags=tags)
    return {}


@operation("GetContactList", "GET", LIST)
def get_contact_list(request: ApiRequest) -> dict[str, Any]:
    return list_to_ses(request.store.get_list(request.label("ContactListName")))


@operation("UpdateContactList", "PUT", LIST)
def update_contact_list(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    topics = read_topics(body.structures("Topics"))
    description = body.string("Description")
    request.check()
    # Disputed (contract §7): a probe of SES saw an omitted Topics or Description kept (``observed``, the
    # default); the model calls the operation "a complete replacement" (``documented``: they are removed).
    replace = request.services.settings.ses_semantics != OBSERVED
    request.store.update_list(request.label("ContactListName"), topics=topics, description=description, replace=replace)
    return {}


@operation("DeleteContactList", "DELETE", LIST)
def delete_contact_list(request: ApiRequest) -> dict[str, Any]:
    request.store.delete_list(request.label("ContactListName"))
    return {}


@operation("ListContactLists", "GET", LISTS)
def list_contact_lists(request: ApiRequest) -> dict[str, Any]:
    page_size = request.query_integer("PageSize")
    token = request.query_string_value("NextToken")
    if token == "":  # present but empty: refused as an invalid token, after the page size (probed)
        check_page_size(page_size)
        raise BadRequest(INVALID_TOKEN, field="NextToken")
    page = request.store.list_lists(page_size=page_size, token=token)
    result: dict[str, Any] = {"ContactLists": [list_item_to_ses(item) for item in page.items]}
    if page.next_token:
        result["NextToken"] = page.next_token
    return result
