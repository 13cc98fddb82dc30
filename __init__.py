"""pli: MSSanté-compatible secure mail gateway and citizen mailbox server.

The repository root is this package; its folders are the subsystems, imported as
``pli.config``, ``pli.certs``, ``pli.policy``, ``pli.mailbox``, ``pli.mailgateway`` and
``pli.docstore`` (dependency direction: config ← certs ← policy ← mailbox ← mailgateway;
docstore depends only on config).
"""

__version__ = "0.1.0"
