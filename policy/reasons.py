"""Every outcome of the policy, as data: reason code, rule, SMTP reply, texts (policy P8).

One :class:`Decision` per reason is built at import and shared: the engine returns these
instances, so a decision costs no allocation. The table below is the single place that says what
a refusal is called, which SMTP and enhanced status codes it carries (RFC 5321 §4.2.3, RFC 3463)
and what the sender reads (French, for professionals and citizens) and the log says (English).

What this module must not do: decide. It describes outcomes; :mod:`pli.policy.engine` picks one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"  # permanent: 5xx at once, or a DSN after acceptance
    DEFER = "defer"  # temporary: 4xx, the sender retries


class Rule(StrEnum):
    """The rule a decision applies (product.md § The rules of citizen messaging)."""

    P1 = "P1"  # professionals write to citizens whose profile is open
    P2 = "P2"  # a citizen writes only to the mailbox that wrote to them
    P3 = "P3"  # pharmacy exception
    P4 = "P4"  # [FIN] / X-MSS-MES: FIN end the exchange
    P5 = "P5"  # a citizen never writes to a citizen, nor outside the trust space
    P6 = "P6"  # no-reply APP mailboxes never receive citizen mail
    P7 = "P7"  # documents invisible to the patient are never delivered to them
    P8 = "P8"  # every decision explained (used for deferrals: a fact could not be gathered)
    P9 = "P9"  # a guardian acts with the citizen's rights
    TRUST = "trust"  # the MSSanté trust space (product.md § The trust space)


class Reason(StrEnum):
    """Stable reason codes: logged, audited, shown by ``pli policy explain``. Never renamed."""

    # accepted
    PROFESSIONAL_TO_CITIZEN = "professional-to-citizen"
    PROFESSIONAL_TO_PROFESSIONAL = "professional-to-professional"
    CITIZEN_REPLY = "citizen-reply"
    CITIZEN_TO_PHARMACY = "citizen-to-pharmacy"
    DELIVERY_REPORT = "delivery-report"
    # refused: the citizen recipient (P1)
    INS_MALFORMED = "ins-malformed"
    INS_UNKNOWN = "ins-unknown"
    PROFILE_CLOSED = "profile-closed"
    PROFILE_OPPOSED = "profile-opposed"
    # refused: the citizen sender (P1, P9)
    SENDER_INS_MALFORMED = "sender-ins-malformed"
    SENDER_PROFILE_INACTIVE = "sender-profile-inactive"
    MANDATE_INACTIVE = "mandate-inactive"
    # refused: what a citizen may write to (P2-P6)
    CITIZEN_NOT_CONTACTED = "citizen-not-contacted"
    THREAD_CLOSED = "thread-closed"
    PHARMACY_NO_DISPENSATION = "pharmacy-no-dispensation"
    CITIZEN_TO_CITIZEN = "citizen-to-citizen"
    CITIZEN_TO_EXTERNAL = "citizen-to-external"
    NO_REPLY_MAILBOX = "no-reply-mailbox"
    # refused: the documents (P7)
    INVISIBLE_TO_PATIENT = "invisible-to-patient"
    INVISIBLE_TO_REPRESENTATIVES = "invisible-to-representatives"
    # refused: the trust space
    OUTSIDE_TRUST_SPACE = "outside-trust-space"
    SENDER_OUTSIDE_TRUST_SPACE = "sender-outside-trust-space"
    # deferred
    FACTS_UNAVAILABLE = "facts-unavailable"


#: RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its CRLF.
SMTP_REPLY_LINE_MAX = 512


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one recipient. ``text`` is French for the sender (webmail, DSN),
    ``log_text`` English for logs and audit, ``smtp_text`` the French text in US-ASCII for the
    SMTP reply line (RFC 5321 §4.2: reply text is ASCII)."""

    action: Action
    smtp_code: int
    enhanced_code: str
    reason: Reason
    rule: Rule
    text: str
    log_text: str
    smtp_text: str

    @property
    def accepted(self) -> bool:
        return self.action is Action.ACCEPT

    @property
    def smtp_reply(self) -> str:
        """The reply line without CRLF, e.g. ``550 5.7.1 Ce professionnel a mis fin…``."""
        return f"{self.smtp_code} {self.enhanced_code} {self.smtp_text}"


def ascii_text(text: str) -> str:
    """French text for the SMTP wire: accents dropped, typographic marks made plain ASCII."""
    plain = text.translate(_TYPOGRAPHY)
    decomposed = unicodedata.normalize("NFKD", plain)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii").decode()


_TYPOGRAPHY = str.maketrans({"’": "'", "«": '"', "»": '"', "\u00a0": " ", "\u202f": " "})

_ACCEPT = (Action.ACCEPT, 250, "2.1.5")  # RFC 3463 X.1.5: destination address valid
_NOT_AUTHORIZED = (Action.REJECT, 550, "5.7.1")  # RFC 3463 X.7.1: delivery not authorized
_BAD_RECIPIENT_SYNTAX = (Action.REJECT, 553, "5.1.3")  # RFC 3463 X.1.3; RFC 5321 553
_BAD_SENDER_SYNTAX = (Action.REJECT, 553, "5.1.7")  # RFC 3463 X.1.7: bad sender's address syntax
_NO_SUCH_MAILBOX = (Action.REJECT, 550, "5.1.1")  # RFC 3463 X.1.1: bad destination mailbox
_MAILBOX_DISABLED = (Action.REJECT, 550, "5.2.1")  # RFC 3463 X.2.1: mailbox disabled
_LOOKUP_FAILED = (Action.DEFER, 451, "4.4.3")  # RFC 3463 X.4.3: directory server failure

_TABLE: tuple[tuple[Reason, Rule, tuple[Action, int, str], str, str], ...] = (
    (
        Reason.PROFESSIONAL_TO_CITIZEN,
        Rule.P1,
        _ACCEPT,
        "Destinataire accepté : patient joignable par messagerie sécurisée.",
        "a professional mailbox writes to a citizen whose profile is open",
    ),
    (
        Reason.PROFESSIONAL_TO_PROFESSIONAL,
        Rule.TRUST,
        _ACCEPT,
        "Destinataire accepté.",
        "mail between professional mailboxes of the trust space",
    ),
    (
        Reason.CITIZEN_REPLY,
        Rule.P2,
        _ACCEPT,
        "Destinataire accepté : ce professionnel vous a écrit.",
        "the citizen writes to a professional mailbox that wrote to them and did not end the "
        "exchange",
    ),
    (
        Reason.CITIZEN_TO_PHARMACY,
        Rule.P3,
        _ACCEPT,
        "Destinataire accepté : pharmacie.",
        "the citizen writes to a pharmacy's organisational mailbox (pharmacy exception)",
    ),
    (
        Reason.DELIVERY_REPORT,
        Rule.TRUST,
        _ACCEPT,
        "Destinataire accepté : avis de remise ou de lecture.",
        "a delivery report or read receipt (null reverse-path) inside the trust space",
    ),
    (
        Reason.INS_MALFORMED,
        Rule.P1,
        _BAD_RECIPIENT_SYNTAX,
        "Adresse patient invalide : elle doit être le matricule INS du patient (15 caractères, "
        "clé comprise) suivi du domaine patient.",
        "the citizen address is not a well-formed INS (15 characters with a valid key)",
    ),
    (
        Reason.INS_UNKNOWN,
        Rule.P1,
        _NO_SUCH_MAILBOX,
        "Patient inconnu : aucun profil Mon espace santé ne correspond à ce matricule INS.",
        "no Mon espace santé profile has this INS",
    ),
    (
        Reason.PROFILE_CLOSED,
        Rule.P1,
        _MAILBOX_DISABLED,
        "Le profil Mon espace santé de ce patient est fermé : il ne reçoit plus de messages.",
        "the citizen's profile is closed",
    ),
    (
        Reason.PROFILE_OPPOSED,
        Rule.P1,
        _MAILBOX_DISABLED,
        "Ce patient s'est opposé à la création de Mon espace santé : il ne peut pas recevoir "
        "de messages.",
        "the citizen opposed the creation of their profile",
    ),
    (
        Reason.SENDER_INS_MALFORMED,
        Rule.P1,
        _BAD_SENDER_SYNTAX,
        "Adresse d'expéditeur patient invalide : ce n'est pas un matricule INS.",
        "the citizen sender's address is not a well-formed INS",
    ),
    (
        Reason.SENDER_PROFILE_INACTIVE,
        Rule.P1,
        _NOT_AUTHORIZED,
        "Votre profil Mon espace santé n'est pas ouvert : vous ne pouvez pas envoyer de messages.",
        "the citizen sender's profile is not open",
    ),
    (
        Reason.MANDATE_INACTIVE,
        Rule.P9,
        _NOT_AUTHORIZED,
        "Vous n'êtes plus autorisé à agir pour ce patient : message non envoyé.",
        "the guardian acting for the citizen no longer holds that role",
    ),
    (
        Reason.CITIZEN_NOT_CONTACTED,
        Rule.P2,
        _NOT_AUTHORIZED,
        "Vous ne pouvez écrire qu'à une messagerie de professionnel qui vous a écrit : "
        "répondez au message reçu de ce professionnel ou de son service.",
        "a citizen may write only to a professional mailbox that wrote to them first",
    ),
    (
        Reason.THREAD_CLOSED,
        Rule.P4,
        _NOT_AUTHORIZED,
        "Ce professionnel a mis fin à l'échange : vous ne pouvez plus lui répondre. "
        "Il pourra vous réécrire.",
        "the professional mailbox ended the exchange ([FIN] or X-MSS-MES: FIN)",
    ),
    (
        Reason.PHARMACY_NO_DISPENSATION,
        Rule.P3,
        _NOT_AUTHORIZED,
        "Vous pouvez écrire à une pharmacie où un médicament vous a été délivré au cours de "
        "l'année écoulée ; ce n'est pas le cas de celle-ci.",
        "no recent dispensation at this pharmacy for this citizen",
    ),
    (
        Reason.CITIZEN_TO_CITIZEN,
        Rule.P5,
        _NOT_AUTHORIZED,
        "La messagerie de Mon espace santé ne permet pas d'écrire à un autre patient.",
        "a citizen never writes to another citizen",
    ),
    (
        Reason.CITIZEN_TO_EXTERNAL,
        Rule.P5,
        _NOT_AUTHORIZED,
        "La messagerie de Mon espace santé ne permet d'écrire qu'aux professionnels de santé "
        "de la messagerie sécurisée.",
        "a citizen never writes outside the MSSanté trust space",
    ),
    (
        Reason.NO_REPLY_MAILBOX,
        Rule.P6,
        _NOT_AUTHORIZED,
        "Cette messagerie envoie des messages automatiques et ne reçoit pas de réponse.",
        "the recipient mailbox declares itself no-reply (an APP mailbox, as a rule)",
    ),
    (
        Reason.INVISIBLE_TO_PATIENT,
        Rule.P7,
        _NOT_AUTHORIZED,
        "Message non remis au patient : il contient un document marqué non visible par le patient.",
        "a document of the message is flagged invisible to the patient",
    ),
    (
        Reason.INVISIBLE_TO_REPRESENTATIVES,
        Rule.P7,
        _NOT_AUTHORIZED,
        "Message non remis : il contient un document marqué non visible par les représentants "
        "légaux, qui ont accès à la messagerie de ce patient.",
        "a document is flagged invisible to the legal representatives, who read this mailbox",
    ),
    (
        Reason.OUTSIDE_TRUST_SPACE,
        Rule.TRUST,
        _NOT_AUTHORIZED,
        "Destinataire hors de l'espace de confiance MSSanté : message non envoyé.",
        "the recipient is outside the MSSanté trust space",
    ),
    (
        Reason.SENDER_OUTSIDE_TRUST_SPACE,
        Rule.TRUST,
        _NOT_AUTHORIZED,
        "Expéditeur hors de l'espace de confiance MSSanté : message refusé.",
        "the sender is outside the MSSanté trust space",
    ),
    (
        Reason.FACTS_UNAVAILABLE,
        Rule.P8,
        _LOOKUP_FAILED,
        "Vérification du destinataire momentanément impossible : nouvel essai plus tard.",
        "a fact the decision needs could not be looked up; try again later",
    ),
)


def _build() -> dict[Reason, Decision]:
    decisions = {}
    for reason, rule, (action, code, enhanced), text, log_text in _TABLE:
        decisions[reason] = Decision(
            action, code, enhanced, reason, rule, text, log_text, ascii_text(text)
        )
    return decisions


#: The one Decision of each reason.
DECISIONS: dict[Reason, Decision] = _build()


def decision_for(reason: Reason) -> Decision:
    return DECISIONS[reason]
