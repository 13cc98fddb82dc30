"""Alembic migrations of the mail store (run through :mod:`pli.mailbox.store.migrate`)."""
