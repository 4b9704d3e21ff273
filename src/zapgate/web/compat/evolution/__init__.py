"""The Evolution API v2 face, under `/evolution`: a client's base URL becomes
`http://host:8000/evolution` and its `apikey` header carries a zapgate API key.

An Evolution *instance* is a session of that key's user (another user's instance is not
found). What goes here, over `zapgate.services` only (see `zapgate.web.compat`):
`schemas.py` for Evolution's request and response bodies; routes grouped as Evolution groups
them (`instance/*`, `message/send*`, `chat/*`, `group/*`, `webhook/set|find`); `render.py`
for Evolution's shapes of a session (connection states), a message (`key.remoteJid`,
`fromMe`, `messageType`, ...), errors, and its webhook events (`MESSAGES_UPSERT`,
`CONNECTION_UPDATE`, `QRCODE_UPDATED`, ...) rendered from zapgate's outbox events. Unlike
Evolution, no API key is ever put inside a webhook payload.
"""
