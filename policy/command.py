"""``pli policy explain``: print the decision for a sender and a recipient, and why.

For operators answering "why was this refused?". With a configuration, the facts come from its
mail store (gathered by the function the `pli` entry point registers with
:func:`use_store_facts`: the same glue every front end uses); otherwise, or with
``--facts options``, from the command line: kinds are inferred from the addresses (the citizen
domain, our professional domains, ``*.mssante.fr`` as the trust space) and every other fact is an
option with the value a fresh exchange would have. The group is registered in
``pli`` by the CLI module (``main.add_command(policy_group)``).

What this module must not do: decide (the engine does) or reach the store or the network.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from pli.config.loading import ConfigError, find_config_file, load_settings
from pli.config.schema import Settings

from .explain import explain, render
from .facts import (
    UNAVAILABLE,
    Actor,
    ActorRole,
    Exchange,
    ExchangeStatus,
    Facts,
    MessageTraits,
    Party,
    PartyKind,
    PolicyConfig,
    ProfileStatus,
    Unavailable,
    domain_of,
    party_kind,
)

DAY = 86400.0
#: mssante.md §1: every MSSanté domain ends in .mssante.fr (without the whitelist at hand, the
#: command takes that as the trust space; --from-kind / --to-kind override).
TRUST_SPACE_SUFFIX = ".mssante.fr"
EXIT_CONFIG = 2


@dataclass(frozen=True)
class ExplainOptions:
    """The command line, as data (tests build it directly)."""

    sender: str
    recipient: str
    sender_kind: PartyKind | None = None
    recipient_kind: PartyKind | None = None
    profile: ProfileStatus = ProfileStatus.OPEN
    represented: bool = False
    pharmacy: bool = False
    no_reply: bool = False
    exchange: ExchangeStatus = ExchangeStatus.NONE
    exchange_age_days: float = 0.0
    dispensation_age_days: float | None = None
    dispensation_unavailable: bool = False
    guardian: str = ""
    mandate_inactive: bool = False
    subject: str | None = None
    mss_mes: tuple[str, ...] = ()
    invisible_to_patient: bool = False
    invisible_to_representatives: bool = False


def infer_kind(address: str, settings: Settings) -> PartyKind:
    if address in ("", "<>"):
        return PartyKind.NULL
    domain = domain_of(address)
    return party_kind(
        address,
        citizen_domain=settings.domains.citizen,
        directory_type=None,
        in_trust_space=domain in settings.domains.professional
        or domain.endswith(TRUST_SPACE_SUFFIX),
    )


def _party(address: str, kind: PartyKind, options: ExplainOptions) -> Party:
    if kind is PartyKind.NULL:
        return Party.null()
    if kind is PartyKind.CITIZEN:
        return Party.citizen(address, options.profile, represented=options.represented)
    if kind is PartyKind.EXTERNAL:
        return Party.external(address)
    return Party.professional(address, kind, pharmacy=options.pharmacy, no_reply=options.no_reply)


def message_from_options(options: ExplainOptions) -> MessageTraits | None:
    """The message's traits when one was described (the DATA moment), else None."""
    if (
        options.subject is None
        and not options.mss_mes
        and not options.invisible_to_patient
        and not options.invisible_to_representatives
    ):
        return None
    return MessageTraits(
        subject=options.subject or "",
        mss_mes=options.mss_mes,
        invisible_to_patient=options.invisible_to_patient,
        invisible_to_representatives=options.invisible_to_representatives,
    )


def actor_from_options(options: ExplainOptions) -> Actor | None:
    if not options.guardian:
        return None
    return Actor(options.guardian, ActorRole.LEGAL_REPRESENTATIVE, not options.mandate_inactive)


def states_facts(options: ExplainOptions) -> bool:
    """Whether the command line states facts the store would otherwise give (kinds, profile,
    directory flags, exchange, dispensation): then those are explained, not the store's."""
    return (
        options.sender_kind is not None
        or options.recipient_kind is not None
        or options.profile is not ProfileStatus.OPEN
        or options.represented
        or options.pharmacy
        or options.no_reply
        or options.exchange is not ExchangeStatus.NONE
        or options.exchange_age_days != 0.0
        or options.dispensation_age_days is not None
        or options.dispensation_unavailable
    )


#: Gathers the facts from the mail store: (settings, sender, recipient, message traits, actor,
#: now) → Facts, raising ValueError when they cannot be gathered. The `pli` entry point
#: registers it (:func:`use_store_facts`): policy/ may not import the store.
StoreFacts = Callable[[Settings, str, str, MessageTraits | None, Actor | None, float], Facts]
_store_facts: list[StoreFacts] = []


def use_store_facts(source: StoreFacts) -> None:
    """Let ``pli policy explain`` read the facts from the store when a configuration is given."""
    _store_facts[:] = [source]


def facts_from_options(options: ExplainOptions, settings: Settings, now: float) -> Facts:
    sender_kind = options.sender_kind or infer_kind(options.sender, settings)
    recipient_kind = options.recipient_kind or infer_kind(options.recipient, settings)
    last: float | Unavailable | None = None
    if options.dispensation_unavailable:
        last = UNAVAILABLE
    elif options.dispensation_age_days is not None:
        last = now - options.dispensation_age_days * DAY
    message = message_from_options(options)
    actor = actor_from_options(options)
    since = (
        None if options.exchange is ExchangeStatus.NONE else now - options.exchange_age_days * DAY
    )
    return Facts(
        _party(options.sender, sender_kind, options),
        _party(options.recipient, recipient_kind, options),
        now,
        Exchange(options.exchange, since),
        last_dispensation=last,
        actor=actor,
        message=message,
    )


def _choice(enum: type[PartyKind] | type[ProfileStatus] | type[ExchangeStatus]) -> click.Choice:
    return click.Choice([member.value for member in enum], case_sensitive=False)


@click.group("policy")
def policy_group() -> None:
    """Explain the citizen messaging rules (P1-P9) as they apply to a message."""


@policy_group.command("explain")
@click.option(
    "-c",
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Configuration file (default: $PLI_CONFIG, else ./pli.toml).",
)
@click.option("--from", "sender", required=True, help="Sender address ('<>' for a report).")
@click.option("--to", "recipient", required=True, help="Recipient address.")
@click.option(
    "--from-kind", "sender_kind", type=_choice(PartyKind), help="Sender kind (default: inferred)."
)
@click.option(
    "--to-kind",
    "recipient_kind",
    type=_choice(PartyKind),
    help="Recipient kind (default: inferred).",
)
@click.option("--profile", type=_choice(ProfileStatus), default="open", show_default=True)
@click.option("--represented", is_flag=True, help="Legal representatives read the citizen's mail.")
@click.option("--pharmacy", is_flag=True, help="The professional is a listed pharmacy (ORG).")
@click.option("--no-reply", is_flag=True, help="The professional mailbox is no-reply.")
@click.option("--exchange", type=_choice(ExchangeStatus), default="none", show_default=True)
@click.option("--exchange-age", type=float, default=0.0, help="Days since the exchange's status.")
@click.option("--dispensation-age", type=float, help="Days since the last dispensation.")
@click.option("--dispensation-unavailable", is_flag=True, help="The lookup failed.")
@click.option("--guardian", default="", help="Identity of a guardian acting for the citizen.")
@click.option("--mandate-inactive", is_flag=True, help="The guardian's mandate has ended.")
@click.option("--subject", help="Decoded subject (gives the DATA moment).")
@click.option("--mss-mes", multiple=True, help="An X-MSS-MES value (repeatable).")
@click.option("--invisible-to-patient", is_flag=True, help="A document is INVISIBLE_PATIENT.")
@click.option(
    "--invisible-to-representatives",
    is_flag=True,
    help="A document is INVISIBLE_REPRESENTANTS_LEGAUX.",
)
@click.option(
    "--facts",
    "facts_source",
    type=click.Choice(["auto", "store", "options"]),
    default="auto",
    show_default=True,
    help="Where the facts come from: the mail store of the configuration (store), the options "
    "(options), or the store when a configuration file is found and no fact option (kinds, "
    "profile, directory flags, exchange, dispensation) is given (auto). From the store, only "
    "--subject, --mss-mes, --invisible-* and --guardian/--mandate-inactive are read.",
)
@click.option(
    "--pharmacy-rule",
    type=click.Choice(["listed", "dispensation"]),
    help="Override policy.pharmacy_rule.",
)
def explain_command(
    config: Path | None,
    facts_source: str,
    pharmacy_rule: str | None,
    sender_kind: str | None,
    recipient_kind: str | None,
    profile: str,
    exchange: str,
    exchange_age: float,
    dispensation_age: float | None,
    mss_mes: tuple[str, ...],
    **flags: object,
) -> None:
    """Print the decision for a message from --from to --to, the rules checked and the facts."""
    try:
        settings = load_settings(find_config_file(config))
    except ConfigError as error:
        for line in str(error).splitlines():
            click.echo(f"pli: {line}", err=True)
        sys.exit(EXIT_CONFIG)
    options = ExplainOptions(
        sender_kind=PartyKind(sender_kind) if sender_kind else None,
        recipient_kind=PartyKind(recipient_kind) if recipient_kind else None,
        profile=ProfileStatus(profile),
        exchange=ExchangeStatus(exchange),
        exchange_age_days=exchange_age,
        dispensation_age_days=dispensation_age,
        mss_mes=mss_mes,
        **flags,  # type: ignore[arg-type]
    )
    policy = PolicyConfig.from_section(settings.policy)
    if pharmacy_rule:
        policy = PolicyConfig(pharmacy_rule, policy.dispensation_window)
    from_store = facts_source == "store" or (
        facts_source == "auto"
        and settings.source is not None
        and bool(_store_facts)
        and not states_facts(options)
    )
    if from_store and not _store_facts:
        raise click.UsageError("facts from the store are not available in this program")
    now = time.time()
    try:
        if from_store:
            facts = _store_facts[0](
                settings,
                options.sender,
                options.recipient,
                message_from_options(options),
                actor_from_options(options),
                now,
            )
        else:
            facts = facts_from_options(options, settings, now)
        explanation = explain(facts, policy)
    except ValueError as error:  # facts that cannot be (a null recipient, a citizen kind…)
        raise click.UsageError(str(error)) from None
    click.echo(render(explanation), nl=False)
