"""The outbound queue: messages for other operators, kept in the store's database (rows) and
in files of their own (``queue.directory``), delivered over SMTP with mutual TLS, retried with
backoff, reported by DSNs. See docs/smtp.md § Outbound queue."""
