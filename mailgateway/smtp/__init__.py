"""The SMTP wire of pli: aiosmtpd's protocol subclassed (session.py), the listener service
(server.py), strict parameters (params.py), DATA reception with smuggling protections (data.py),
limits and replies as data, and the two handlers: the inbound MTA (inbound.py) and submission
(submission_handler.py). See docs/smtp.md."""
