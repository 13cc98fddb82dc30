"""Which document metadata mean "invisible to the patient" (policy P7).

The convention, from the ANS specifications:

- In an IHE_XDM.zip attachment (IHE ITI-32), each document's ``ExtrinsicObject`` in
  ``METADATA.XML`` carries ``confidentialityCode`` classifications (scheme
  ``urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f``). Besides the HL7 ``N``/``R``/``V`` levels, the
  DMP and MSSanté use the codes of the ANS value set TRE_A07 StatutVisibiliteDocument (OID
  ``1.2.250.1.213.1.1.4.13``): ``INVISIBLE_PATIENT`` (not visible to the patient),
  ``INVISIBLE_REPRESENTANTS_LEGAUX`` (not visible to the patient's legal representatives),
  ``MASQUE_PS`` (hidden from professionals, which does not concern the patient's mailbox).
- The HL7v2 feed from hospital software to the mail client (CI-SIS "transmission de document
  CDA-R2", MetaDMPMSS table) carries the same flags as OBX segments (``INVISIBLE_PATIENT``,
  ``INVISIBLE_REP_LEGAUX``); the client must then not address the patient (DESTMSSANTEPAT = N).
  Those flags never travel in the mail itself; the XDM metadata do.
- There is no MSSanté ``X-MSS-*`` header for visibility (mssante.md §5 lists them all), and pli
  does not invent one: another operator would not send it.

So the caller that reads an XDM attachment passes every confidentialityCode it finds to
:func:`restrictions`, and sets ``MessageTraits.invisible_to_patient`` /
``invisible_to_representatives`` from the result. A code counts whatever coding scheme the sender
declared (TRE_A07 says its codes are case-insensitive): a false positive only withholds a message
from the patient, a false negative would show it to them.

Pure functions; no XML here (the XDM reader is the document filing's).
"""

from __future__ import annotations

from collections.abc import Iterable

#: The ANS value set TRE_A07 StatutVisibiliteDocument (restriction of a document's audience).
VISIBILITY_CODE_SYSTEM = "1.2.250.1.213.1.1.4.13"
INVISIBLE_PATIENT = "INVISIBLE_PATIENT"
#: TRE_A07 spells it out; the HL7v2 MetaDMPMSS table abbreviates it: both are recognised.
INVISIBLE_REPRESENTATIVES = frozenset({"INVISIBLE_REPRESENTANTS_LEGAUX", "INVISIBLE_REP_LEGAUX"})


def restrictions(codes: Iterable[str]) -> tuple[bool, bool]:
    """(invisible to the patient, invisible to legal representatives) for a message's
    confidentialityCode values, all documents together."""
    patient = representatives = False
    for code in codes:
        normalised = code.strip().upper()
        patient = patient or normalised == INVISIBLE_PATIENT
        representatives = representatives or normalised in INVISIBLE_REPRESENTATIVES
    return patient, representatives
