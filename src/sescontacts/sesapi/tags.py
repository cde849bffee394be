"""TagResource / UntagResource / ListTagsForResource on the contact list's ARN."""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest, NotFound
from .codec import ApiRequest
from .routing import operation
from .shapes import read_tags

TAGS = "/v2/email/tags"
_LIST_ARN_MARKER = ":contact-list/"


def _list_name(request: ApiRequest, arn: str | None) -> str:
    """The list an ARN names; NotFound (as SES words it) when it names no list of this account and region."""
    if arn is None:
        return ""
    if not arn.startswith("arn:") or _LIST_ARN_MARKER not in arn:
        raise BadRequest(f"Invalid resource ARN: {arn}", field="ResourceArn")
    name = arn.rpartition(_LIST_ARN_MARKER)[2]
    if request.store.list_arn(name) != arn:
        raise NotFound(f"No ContactList present with name: {name}", field="ResourceArn")
    return name


@operation("TagResource", "POST", TAGS)
def tag_resource(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    arn = body.string("ResourceArn", required=True)
    tags = read_tags(body.structures("Tags", required=True))
    request.check()
    request.store.tag_list(_list_name(request, arn), tags)
    return {}


@operation("UntagResource", "DELETE", TAGS)
def untag_resource(request: ApiRequest) -> dict[str, Any]:
    arn = request.query_string_value("ResourceArn", required=True)
    keys = request.query("TagKeys")
    if not keys:
        request.violations.missing("tagKeys")
    request.check()
    request.store.untag_list(_list_name(request, arn), keys)
    return {}


@operation("ListTagsForResource", "GET", TAGS)
def list_tags_for_resource(request: ApiRequest) -> dict[str, Any]:
    arn = request.query_string_value("ResourceArn", required=True)
    request.check()
    name = _list_name(request, arn)
    try:
        contact_list = request.store.get_list(name)
    except NotFound:
        raise NotFound(f"No ContactList present with name: {name}", field="ResourceArn") from None
    return {"Tags": [{"Key": k, "Value": v} for k, v in contact_list.tags]}
