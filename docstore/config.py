"""The document store's settings, taken from pli's ``[docstore]`` section (or built by tests),
and the listeners ``pli docstore serve`` runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pli.config.loading import ConfigError
from pli.config.schema import Settings, async_database_url

DATABASE_FILE = "docstore.sqlite3"


@dataclass(frozen=True)
class DocstoreConfig:
    data_dir: Path
    token: str
    database_url: str  # an async SQLAlchemy URL
    database_schema: str = ""
    max_document_size: int = 25 * 1024 * 1024
    page_size: int = 50

    @classmethod
    def from_settings(cls, settings: Settings) -> DocstoreConfig:
        section = settings.docstore
        return cls(
            data_dir=section.data_dir,
            token=section.token,
            database_url=async_database_url(section.database_url, section.data_dir / DATABASE_FILE),
            database_schema=section.database_schema,
            max_document_size=section.max_document_size,
            page_size=section.page_size,
        )


def docstore_only(settings: Settings) -> Settings:
    """The settings ``pli docstore serve`` runs: only the listeners of protocol ``docstore``,
    enabled whether or not ``pli serve`` would start them (a deployment may run the store apart
    from the mail server, on the same configuration file)."""
    listeners = {
        name: listener.model_copy(update={"enabled": True})
        for name, listener in settings.listeners.items()
        if listener.protocol == "docstore"
    }
    if not listeners:
        raise ConfigError(f'{settings.source or "defaults"}: no listener has protocol = "docstore"')
    return settings.model_copy(update={"listeners": listeners})
