"""Bulk sending for establishments (docs/bulk.md): campaigns from a CSV of patients and Jinja2
templates, checked row by row (dry run) before anything is sent, then submitted through the one
submission pipeline (policy, DKIM, queue) exactly once per row across crashes, throttled, with a
final report per row; the HTTP API on the admin listener; ``pli stats``, the usage indicators.

Modules: ``recipients`` (the CSV), ``templates`` (Jinja2 sandbox), ``definition`` and
``campaign`` (the campaign file and what it names), ``xdm`` (IHE_XDM.zip writing), ``compose``
(one message per row), ``models`` and ``ledger`` (tables, the exactly-once state machine),
``check`` (dry run), ``runner`` (sending), ``report``, ``service`` (in ``pli serve``), ``api``
(HTTP), ``stats``, ``commands`` (``pli bulk``, ``pli stats``).

What this package must not do: speak SMTP, or deliver by any path other than the submission
pipeline.
"""
