"""The WAHA face, under `/waha`: a client's base URL becomes `http://host:8000/waha` and its
`X-Api-Key` header carries a zapgate API key.

A WAHA *session* is a zapgate session of that key's user (another user's session is not
found). What goes here, over `zapgate.services` only (see `zapgate.web.compat`):
`schemas.py` for WAHA's request and response bodies; routes grouped as WAHA groups them
(`api/sessions`, `api/{session}/auth/*`, `api/send*`, `api/{session}/chats`,
`api/contacts/*`, `api/{session}/groups/*`); `render.py` for WAHA's chat ids (`...@c.us`,
`...@g.us`, `...@lid`), its session states (`SCAN_QR_CODE`, `WORKING`, ...), its message
and error shapes, and its webhook envelope (`{id, timestamp, event, session, me, payload}`
with the `X-Webhook-Hmac` sha512 signature) rendered from zapgate's outbox events.
"""
