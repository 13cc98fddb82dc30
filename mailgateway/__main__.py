"""``python -m pli.mailgateway`` is the `pli` command."""

from .cli import main

main(prog_name="pli")
