"""The account's suppression list and suppression attributes: Put/Get/Delete/ListSuppressedDestinations,
GetAccount and PutAccountSuppressionAttributes, on ``request.services.suppression`` (the SuppressionList).

Checks come in SES's order, as floci's probe of real SES recorded it (SesSuppressionService, SesListPaging):
the protocol's (types, missing members, enums, lengths) collected into one message, then the address, then
the tenant, then the list. What the probe saw and we follow:

- A bad reason is ``Value at 'reason' ...enum value set: [BOUNCE, COMPLAINT]``; in a list (``Reason`` query
  parameters, ``SuppressedReasons``) SES wraps it: ``Member must satisfy constraint: [Member must satisfy enum
  value set: [BOUNCE, COMPLAINT]]``.
- ListSuppressedDestinations: PageSize 1 to 1000, 1000 when absent, else ``Page size N is invalid, expected a
  number between 1 and 1000``; a NextToken that is empty, forged, or taken with other filters is
  ``InvalidNextTokenException`` ``Token is invalid.`` (this operation models that error; ListContacts does
  not).
- An address not on the list: 404 ``Email address X does not exist on your suppression list.``

Our own choices (docs/ses-fidelity.md, rows S1-S8): addresses are checked as contacts' are; StartDate and
EndDate take ISO-8601 (what botocore and the JS SDK send) or epoch seconds; tenants do not exist here; GetAccount
says only what the local server truthfully is (it sends no mail).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final

from ..errors import BadRequest, InvalidNextToken, NotFound, Serialization
from ..ses_wire import to_ses_time
from ..suppression import SUPPRESSION_REASONS, SuppressedDestination, SuppressionQuery
from ..validation import email_problem
from .codec import ApiRequest, Members
from .routing import operation

ADDRESSES = "/v2/email/suppression/addresses"
ADDRESS = ADDRESSES + "/{EmailAddress}"
ACCOUNT = "/v2/email/account"
# ListSuppressedDestinations' page size: SES's bound, and its default (probed: a page without PageSize held
# every entry of a small list, so the default is taken to be the bound).
MAX_PAGE_SIZE: Final = 1000
INVALID_TOKEN: Final = "Token is invalid."
_FEATURE_STATUSES: Final = ("ENABLED", "DISABLED")
_VERDICT_THRESHOLDS: Final = ("MEDIUM", "HIGH", "MANAGED")
_EPOCH: Final = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")


def _address(value: str | None) -> str:
    """The address of a request, trimmed as SES trims it; blank is refused with SES's message (probed)."""
    address = (value or "").strip()
    if not address:
        raise BadRequest("EmailAddress is required.", field="EmailAddress")
    return address


def _tenant(request: ApiRequest, tenant: str | None) -> str | None:
    """TenantName, its length checked (min 1 in the model) with the other protocol checks."""
    if tenant == "":
        request.violations.items.append(
            "Value '' at 'tenantName' failed to satisfy constraint: Member must have length greater than or equal to 1"
        )
    return tenant


def _no_tenant(tenant: str | None) -> None:
    """No tenant exists on this server: a request naming one is for a list that is not here."""
    if tenant:
        raise NotFound(f"Tenant {tenant} does not exist.", field="TenantName")


def _path_address(request: ApiRequest) -> str:
    """Get's and Delete's address (the path's) with their TenantName query parameter, checked in SES's order."""
    tenant = _tenant(request, request.query_string_value("TenantName"))
    request.check()
    address = _address(request.label("EmailAddress"))
    _no_tenant(tenant)
    return address


def destination_to_ses(entry: SuppressedDestination, *, summary: bool = False) -> dict[str, Any]:
    """A SuppressedDestination (or, ``summary``, a SuppressedDestinationSummary) as SES's JSON carries it."""
    result: dict[str, Any] = {
        "EmailAddress": entry.email,
        "Reason": entry.reason,
        "LastUpdateTime": to_ses_time(entry.last_update_time),
    }
    if not summary:
        attributes = {"MessageId": entry.message_id, "FeedbackId": entry.feedback_id}
        result["Attributes"] = {k: v for k, v in attributes.items() if v is not None}
    return result


@operation("PutSuppressedDestination", "PUT", ADDRESSES)
def put_suppressed_destination(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    email = body.string("EmailAddress", required=True)
    reason = body.enum("Reason", SUPPRESSION_REASONS, required=True)
    tenant = _tenant(request, body.string("TenantName"))
    request.check()
    address = _address(email)
    if email_problem(address) is not None:
        raise BadRequest(f"EmailAddress <{address}> is invalid", field="EmailAddress")
    _no_tenant(tenant)
    request.services.suppression.put_suppressed(address, reason or "")
    return {}


@operation("GetSuppressedDestination", "GET", ADDRESS)
def get_suppressed_destination(request: ApiRequest) -> dict[str, Any]:
    entry = request.services.suppression.get_suppressed(_path_address(request))
    return {"SuppressedDestination": destination_to_ses(entry)}


@operation("DeleteSuppressedDestination", "DELETE", ADDRESS)
def delete_suppressed_destination(request: ApiRequest) -> dict[str, Any]:
    request.services.suppression.delete_suppressed(_path_address(request))
    return {}


def _query_time(request: ApiRequest, name: str) -> float | None:
    """A timestamp query parameter as epoch seconds: ISO-8601 (botocore sends ``2024-01-01T00:00:00Z``, the JS
    SDK the same or with milliseconds; no offset means UTC) or epoch seconds. Absent is None."""
    value = request.query_string_value(name)
    if value is None:
        return None
    if _EPOCH.fullmatch(value):
        return float(value)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Serialization(f"'{value}' can not be converted to Timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _query_reasons(request: ApiRequest) -> tuple[str, ...]:
    """The repeated ``Reason`` parameter: blank values ignored (as SES does), any other value an enum."""
    reasons: list[str] = []
    for value in request.query("Reason"):
        if not value.strip():
            continue
        if value not in SUPPRESSION_REASONS:
            request.violations.enum_members("reasons", SUPPRESSION_REASONS)
            return ()
        if value not in reasons:
            reasons.append(value)
    return tuple(sorted(reasons))


@operation("ListSuppressedDestinations", "GET", ADDRESSES)
def list_suppressed_destinations(request: ApiRequest) -> dict[str, Any]:
    reasons = _query_reasons(request)
    tenant = _tenant(request, request.query_string_value("TenantName"))
    request.check()
    start = _query_time(request, "StartDate")
    end = _query_time(request, "EndDate")
    page_size = request.query_integer("PageSize")
    if page_size is not None and not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadRequest(
            f"Page size {page_size} is invalid, expected a number between 1 and {MAX_PAGE_SIZE}", field="PageSize"
        )
    token = request.query_string_value("NextToken")
    if token == "":
        raise InvalidNextToken(INVALID_TOKEN, field="NextToken")
    _no_tenant(tenant)
    query = SuppressionQuery(reasons=reasons, start=start, end=end)
    try:
        page = request.services.suppression.list_suppressed(query, page_size=page_size or MAX_PAGE_SIZE, token=token)
    except BadRequest as error:
        if error.field != "NextToken":
            raise
        # The list's own refusal of a token (forged, or made for other filters) is this operation's error.
        raise InvalidNextToken(INVALID_TOKEN, field="NextToken") from None
    result: dict[str, Any] = {
        "SuppressedDestinationSummaries": [destination_to_ses(entry, summary=True) for entry in page.items]
    }
    if page.next_token:
        result["NextToken"] = page.next_token
    return result


@operation("GetAccount", "GET", ACCOUNT)
def get_account(request: ApiRequest) -> dict[str, Any]:
    """The account as this server can truthfully describe it.

    Both backends: ``SuppressionAttributes.SuppressedReasons`` (the suppression list's). The local backend adds
    what a server that sends no mail is: sending disabled, no production access, a quota of zero with nothing
    sent, no dedicated IPs, no VDM, and ``HEALTHY`` (no reputation issue can exist). It leaves out what it has
    no value for (Details, PricingAttributes, DeliveryAttributes). The ses backend says only the suppression
    attributes: the rest is SES's to say, and `aws sesv2 get-account` against SES says it.
    """
    reasons = list(request.services.suppression.suppressed_reasons())
    result: dict[str, Any] = {"SuppressionAttributes": {"SuppressedReasons": reasons}}
    if request.services.settings.backend == "local":
        result.update(
            {
                "DedicatedIpAutoWarmupEnabled": False,
                "EnforcementStatus": "HEALTHY",
                "ProductionAccessEnabled": False,
                "SendQuota": {"Max24HourSend": 0.0, "MaxSendRate": 0.0, "SentLast24Hours": 0.0},
                "SendingEnabled": False,
                "VdmAttributes": {"VdmEnabled": "DISABLED"},
            }
        )
    return result


def _check_validation_attributes(attributes: Members | None) -> str | None:
    """``ValidationAttributes`` (Auto Validation): its shape checked as the model states it; the status asked
    for, if any. The local server validates no address, so only DISABLED can be true of it."""
    if attributes is None:
        return None
    threshold = attributes.structure("ConditionThreshold", required=True)
    if threshold is None:
        return None
    status = threshold.enum("ConditionThresholdEnabled", _FEATURE_STATUSES, required=True)
    confidence = threshold.structure("OverallConfidenceThreshold")
    if confidence is not None:
        confidence.enum("ConfidenceVerdictThreshold", _VERDICT_THRESHOLDS, required=True)
    return status


@operation("PutAccountSuppressionAttributes", "PUT", ACCOUNT + "/suppression")
def put_account_suppression_attributes(request: ApiRequest) -> dict[str, Any]:
    """SuppressedReasons replaces the account's; absent means none (as the probe saw: SesSuppressionService
    stores an empty list)."""
    body = request.body
    reasons = body.enums("SuppressedReasons", SUPPRESSION_REASONS)
    validation = _check_validation_attributes(body.structure("ValidationAttributes"))
    request.check()
    if validation == "ENABLED":
        raise BadRequest(
            "Auto Validation can't be enabled: this server validates no addresses (ConditionThresholdEnabled "
            "DISABLED is accepted).",
            field="ValidationAttributes",
        )
    request.services.suppression.set_suppressed_reasons(reasons or [])
    return {}
