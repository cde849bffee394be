"""The SES v2 contact-list API, wire-compatible with Amazon SES, served under ``/v2/email/``.

Modules, one concept each:
- ``routing``: the operation table and raw-path matching (``%2F`` in an address is not a separator).
- ``codec``: request members with SES's type and required-member checks; JSON responses and SES errors.
- ``sigv4``: SigV4 verification against the local access key.
- ``app``: the ASGI app that ties them together (and the seam for wrappers such as a throttle).
- ``lists``, ``contacts``, ``tags``: thin operation handlers over ``services.store``.
"""

from .app import create_sesapi_app

__all__ = ["create_sesapi_app"]
