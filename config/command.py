"""What every `pli` subcommand shares: ``-c/--config``, loading settings or exiting with the
operator's one-line errors.

Subsystems define their own command groups (``pli pki``, ``pli mailbox``, …) and may not import
``mailgateway``, where the `pli` entry point lives; they import these helpers from here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import structlog

from .loading import ConfigError, find_config_file, load_settings
from .schema import Settings

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILURE = 1
EXIT_CONFIG = 2


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print an error for the operator (one line per problem, prefixed ``pli:``) and exit."""
    for line in message.splitlines():
        click.echo(f"pli: {line}", err=True)
    sys.exit(code)


def load_or_exit(config: Path | None) -> Settings:
    """The settings of ``config`` (else ``$PLI_CONFIG``, else ``./pli.toml``); exit 2 if refused.

    Unless logging was configured already (``pli serve``), library log events are kept to
    warnings and worse, on stderr, so that a command's output stays its own."""
    try:
        settings = load_settings(find_config_file(config))
    except ConfigError as error:
        fail(str(error), EXIT_CONFIG)
    if not structlog.is_configured():
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        )
    return settings


def config_option(function: F) -> F:
    """``-c/--config FILE``; without it, ``$PLI_CONFIG`` or ``./pli.toml``."""
    return click.option(
        "-c",
        "--config",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Configuration file (default: $PLI_CONFIG, else ./pli.toml).",
    )(function)
