"""Authentication: SASL mechanisms, bearer tokens, one-time codes (shared by IMAP, SMTP, webmail).

Pure protocol and cryptography pieces live here; looking identities up in the store is the
caller's business. Nothing here touches a socket or the database.
"""
