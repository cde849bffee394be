"""Serving HTTP: the one ASGI app (``app.py``), what guards it before routing (``hosts.py``, ``request_body.py``)
and how ``serve`` runs uvicorn (``connections.py``: timeouts, head cap, access log)."""
