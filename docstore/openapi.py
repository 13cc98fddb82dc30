"""The API's OpenAPI description as kept in the repository (``docs/docstore-openapi.json``).

``pli docstore openapi`` prints it; a test keeps the file equal to what the application serves
at ``/openapi.json``. The description does not depend on the configuration.
"""

from __future__ import annotations

import json
from pathlib import Path

from .api import create_docstore_app
from .config import DocstoreConfig
from .store import DocumentStore


def openapi_document() -> str:
    """The OpenAPI JSON of the document store's API, formatted as the repository keeps it."""
    unopened = DocumentStore(
        DocstoreConfig(data_dir=Path("unused"), token="", database_url="sqlite+aiosqlite://")
    )
    description = create_docstore_app(unopened).openapi()
    return json.dumps(description, indent=2, ensure_ascii=False) + "\n"
