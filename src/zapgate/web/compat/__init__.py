"""Compatibility faces: other gateways' public APIs, spoken by zapgate over its own services.

A face lets a client written for another gateway (Evolution API, WAHA) point at zapgate by
changing only its base URL and key. It is a translation and nothing more:

- it parses the peer's wire shape (its routes, bodies, ids and names) into a call of
  zapgate's own service (`zapgate.services`), and renders the result, and every
  `GatewayError` (by its errcode), back in the peer's shape;
- it owns no state and no SQL, and has no second send path and no second webhook pipeline:
  a webhook in a peer's shape is a rendering of the same outbox event, delivered by the same
  dispatcher with the same retries;
- a route the face does not support answers in the peer's error shape with a clear
  "not supported by zapgate", never a 500.

Each face is a package with its own prefix: `schemas.py` (the peer's wire shapes, apart from
zapgate's `web/schemas/`), its auth dependency (the peer's key header carrying a zapgate API
key), one routes module per group of the peer's API, and `render.py` (domain objects, errors
and events to the peer's shapes). The app includes a face's router only when the operator
turned it on.
"""
