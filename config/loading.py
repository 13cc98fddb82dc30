"""Loading settings: the TOML file, then ``PLI_…`` environment overrides, then validation.

Environment overrides name a key by its path, sections separated by a double underscore:
``PLI_LIMITS__MESSAGE_SIZE=10MiB``, ``PLI_LISTENERS__IMAP__PORT=143``. A value is read as a TOML
value when it parses as one (numbers, booleans, ``["a", "b"]``), else as a string.

Every refusal is a :class:`ConfigError` whose lines each name where the value came from (file or
variable), the key, the value and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .schema import Settings, default_listeners

ENV_PREFIX = "PLI_"
ENV_SEPARATOR = "__"
#: Variables with the prefix that are not configuration keys.
ENV_RESERVED = frozenset({"PLI_CONFIG", "PLI_DEV_DIR"})
ENV_RESERVED_PREFIXES = ("PLI_TEST_",)
CONFIG_FILE_NAME = "pli.toml"

Key = tuple[str, ...]


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` is the message for the operator."""


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``path`` (None: defaults only) and the environment, validated and with every
    relative path made absolute."""
    environ = os.environ if environ is None else environ
    origins: dict[Key, str] = {}
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
        _record_origins(data, (), str(path), origins)
    for key, value, variable in _environment_overrides(environ):
        _set(data, key, value)
        origins[key] = f"environment {variable}"
    _merge_default_listeners(data)
    base = (path.parent if path is not None else Path.cwd()).resolve()
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, data, origins, str(path or "defaults"))) from None
    return _resolve_paths(settings, base, path)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: the file is not UTF-8") from None


def _record_origins(data: Mapping[str, Any], prefix: Key, origin: str, out: dict[Key, str]) -> None:
    for name, value in data.items():
        out[(*prefix, name)] = origin
        if isinstance(value, Mapping):
            _record_origins(value, (*prefix, name), origin, out)


def _environment_overrides(environ: Mapping[str, str]) -> list[tuple[Key, Any, str]]:
    overrides = []
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX) or variable in ENV_RESERVED:
            continue
        if variable.startswith(ENV_RESERVED_PREFIXES):
            continue
        key = tuple(part.lower() for part in variable[len(ENV_PREFIX) :].split(ENV_SEPARATOR))
        if any(not part for part in key):
            raise ConfigError(
                f"environment {variable}: expected PLI_SECTION__KEY (parts separated by '__')"
            )
        overrides.append((key, _parse_env_value(environ[variable]), variable))
    return overrides


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def _set(data: dict[str, Any], key: Key, value: Any) -> None:
    node = data
    for part in key[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[key[-1]] = value


def _merge_default_listeners(data: dict[str, Any]) -> None:
    """A file's ``[listeners.NAME]`` overrides the default listener NAME key by key."""
    given = data.get("listeners")
    if not isinstance(given, dict):
        return
    merged: dict[str, Any] = {
        name: listener.model_dump(mode="python") for name, listener in default_listeners().items()
    }
    for name, table in given.items():
        if isinstance(table, dict) and name in merged:
            merged[name] = {**merged[name], **table}
        else:
            merged[name] = table
    data["listeners"] = merged


def _describe(
    error: ValidationError, data: Mapping[str, Any], origins: dict[Key, str], default: str
) -> str:
    lines = []
    for item in error.errors(include_url=False):
        key = tuple(str(part) for part in item["loc"])
        dotted = ".".join(key) or "(top level)"
        origin = _origin_of(key, origins, default)
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            lines.append(f"{origin}: unknown key {dotted} (see `pli config reference`)")
        elif item["type"] == "missing":
            lines.append(f"{origin}: {dotted} is required")
        else:
            value = _lookup(data, key)
            shown = f" = {value!r}" if value is not _MISSING else ""
            lines.append(f"{origin}: {dotted}{shown}: {_expected(message)}")
    return "\n".join(lines)


_MISSING = object()


def _lookup(data: Any, key: Key) -> Any:
    node = data
    for part in key:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _origin_of(key: Key, origins: dict[Key, str], default: str) -> str:
    for length in range(len(key), 0, -1):
        if key[:length] in origins:
            return origins[key[:length]]
    return default


def _expected(message: str) -> str:
    if message.startswith("Input should be "):
        return "expected " + message.removeprefix("Input should be ")
    if message.startswith("expected"):
        return message
    return message[:1].lower() + message[1:]


def _resolve_paths(settings: Settings, base: Path, source: Path | None) -> Settings:
    data_dir = (base / settings.server.data_dir).resolve()
    server = settings.server.model_copy(update={"data_dir": data_dir})
    update: dict[str, Any] = {"server": server, "source": source}
    for name in Settings.model_fields:
        section = getattr(settings, name)
        if name != "server" and isinstance(section, BaseModel):
            update[name] = _absolute(section, data_dir)
    return settings.model_copy(update=update)


def _absolute(section: BaseModel, data_dir: Path) -> BaseModel:
    changes = {
        field: data_dir / value
        for field in type(section).model_fields
        if isinstance(value := getattr(section, field), Path) and not value.is_absolute()
    }
    return section.model_copy(update=changes) if changes else section


def find_config_file(
    explicit: Path | None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The file to use: the one given, else ``$PLI_CONFIG``, else ``./pli.toml`` if it exists."""
    environ = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if environ.get("PLI_CONFIG"):
        return Path(environ["PLI_CONFIG"])
    candidate = Path(CONFIG_FILE_NAME)
    return candidate if candidate.exists() else None
