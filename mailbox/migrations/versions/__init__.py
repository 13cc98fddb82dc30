"""Revisions of the mail store schema, oldest first (``down_revision`` chains them)."""
