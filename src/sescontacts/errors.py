"""One error tree for the whole product.

Each error knows the SES error code and HTTP status it stands for, so the SES API renders it exactly as SES
would, while the console and the CLI render the same error as an inline message or a line on stderr.
"""

from __future__ import annotations


class SesContactsError(Exception):
    """Base of every error a user can be shown. ``field`` names the input at fault, when there is one."""

    code = "BadRequestException"
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(SesContactsError):
    code = "BadRequestException"
    status = 400


class NotFound(SesContactsError):
    code = "NotFoundException"
    status = 404


class ListNotFound(NotFound):
    """The contact list itself is missing (a contact's ``NotFound`` means the list exists but not the contact).

    SES answers both with NotFoundException and only the message tells them apart; the stores raise this class
    so callers can tell them apart by type. On the wire it is the same code, status and message.
    """


class AlreadyExists(SesContactsError):
    code = "AlreadyExistsException"
    status = 400


class LimitExceeded(SesContactsError):
    code = "LimitExceededException"
    status = 400


class InvalidNextToken(SesContactsError):
    code = "InvalidNextTokenException"
    status = 400


class TooManyRequests(SesContactsError):
    code = "TooManyRequestsException"
    status = 429


class ConcurrentModification(SesContactsError):
    code = "ConcurrentModificationException"
    status = 500


class Serialization(SesContactsError):
    """A member of the wrong JSON type, e.g. a number where SES expects a string."""

    code = "SerializationException"
    status = 400


class UnknownOperation(SesContactsError):
    """No route: AWS answers 404 with UnknownOperationException for a path no operation binds."""

    code = "UnknownOperationException"
    status = 404


class PayloadTooLarge(SesContactsError):
    code = "RequestEntityTooLargeException"
    status = 413


# Authentication (SigV4). Codes and statuses as AWS's common errors document them.
class AuthError(SesContactsError):
    status = 403


class MissingAuthenticationToken(AuthError):
    code = "MissingAuthenticationTokenException"
    status = 403


class IncompleteSignature(AuthError):
    code = "IncompleteSignatureException"
    status = 400


class InvalidClientTokenId(AuthError):
    code = "UnrecognizedClientException"
    status = 403


class SignatureDoesNotMatch(AuthError):
    code = "InvalidSignatureException"
    status = 403


class RequestExpired(AuthError):
    code = "InvalidSignatureException"
    status = 403


class ServiceUnavailable(SesContactsError):
    """The ses backend could not reach SES (network, credentials) after its retries."""

    code = "ServiceUnavailable"
    status = 503
