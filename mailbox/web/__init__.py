"""The citizen webmail: a FastAPI application with server-rendered French pages.

Login (password, then a one-time code e-mailed to the personal address), server-side sessions
with CSRF tokens, the message list grouped by professional, reading (sanitised HTML in a
sandboxed frame), attachments (inline for PDF, text and JPEG, else downloaded), saving an
attachment to the health document store (the filing client), replies and writing to a pharmacy
when the policy allows it (through the injected submission pipeline), guardians switching
profiles, the activity history, read receipts (RFC 8098).

Start at :mod:`.app` (``create_webmail_app``) and :mod:`.context` (what the wiring injects).
The webmail must not import ``pli.mailgateway`` nor speak SMTP: submission, filing and the policy
facts are injected.
"""
