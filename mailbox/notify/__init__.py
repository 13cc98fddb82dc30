"""E-mails pli sends to citizens' personal addresses: new-mail notifications and login codes.

- :mod:`.relay` hands an e-mail to the configured relay (``notifications.relay``): the dev outbox
  (one ``.eml`` file per e-mail in ``notifications.outbox_dir``) or an SMTP relay.
- :mod:`.texts` holds the fixed French texts: never health data, never a sender's name.
- :mod:`.service` learns of new mail in citizens' INBOXes, throttles (one e-mail per recipient per
  ``notifications.interval``) and sends through a durable outbox.
- :mod:`.tables` declares the notifier's tables.

Nothing here reads message content beyond the index, nor speaks to a citizen's mailbox.
"""
