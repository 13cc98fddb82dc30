"""Document categories: a closed list with stable codes and French labels, and the category of a
document type code.

The categories are those a citizen sees in the documents space of Mon espace santé (ordonnances,
comptes rendus, résultats de biologie, imagerie, certificats…). A document's category comes from
its type code when the code is known: LOINC codes and the French complementary codes of the
CI-SIS value set JDV_J07 "XdsTypeCode CI-SIS" (OID 1.2.250.1.213.1.1.5.471), the value set of the
DMP's ``typeCode``. Anything else falls back to ``autre``.

Pure data and functions: no I/O.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """Stable codes (stored and exchanged); never renumber or rename one."""

    ORDONNANCE = "ordonnance"
    COMPTE_RENDU = "compte-rendu"
    BIOLOGIE = "biologie"
    IMAGERIE = "imagerie"
    LETTRE_LIAISON = "lettre-liaison"
    SYNTHESE = "synthese"
    CERTIFICAT = "certificat"
    VACCINATION = "vaccination"
    PREVENTION = "prevention"
    ADMINISTRATIF = "administratif"
    AUTRE = "autre"

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS: dict[Category, str] = {
    Category.ORDONNANCE: "Ordonnances et prescriptions",
    Category.COMPTE_RENDU: "Comptes rendus",
    Category.BIOLOGIE: "Résultats de biologie",
    Category.IMAGERIE: "Imagerie médicale",
    Category.LETTRE_LIAISON: "Lettres de liaison",
    Category.SYNTHESE: "Synthèses médicales",
    Category.CERTIFICAT: "Certificats",
    Category.VACCINATION: "Vaccinations",
    Category.PREVENTION: "Prévention",
    Category.ADMINISTRATIF: "Documents administratifs",
    Category.AUTRE: "Autres documents",
}

#: LOINC (2.16.840.1.113883.6.1) and TRE_A05 "TypeDocComplementaire" (1.2.250.1.213.1.1.4.12).
LOINC_OID = "2.16.840.1.113883.6.1"
FRENCH_TYPE_CODES_OID = "1.2.250.1.213.1.1.4.12"
KNOWN_SCHEMES = frozenset({LOINC_OID, FRENCH_TYPE_CODES_OID, "LOINC", "http://loinc.org"})

# JDV_J07_XdsTypeCode_CISIS, grouped by the category a citizen would look under.
_BY_CATEGORY: dict[Category, tuple[str, ...]] = {
    Category.ORDONNANCE: (
        "57833-6",  # Prescription de produits de santé
        "57832-8",  # Prescription de soins
        "57828-6",  # Prescription (autre)
        "75468-9",  # Renouvellement ordonnance par pharmacien correspondant
        "55115-0",  # Demande d'actes d'imagerie
        "60593-1",  # Dispensation médicamenteuse
        "PRESC-AAT",
        "PRESC-BIO",
        "PRESC-KINE",
        "PRESC-INF",
        "PRESC-PEDI",
        "PRESC-ORTHOPHO",
        "PRESC-ORTHOPTIE",
        "DISP_AUT",
    ),
    Category.BIOLOGIE: (
        "11502-2",  # CR d'examens biologiques
        "51969-4",  # CR de génétique moléculaire
        "96173-0",  # Test rapide d'orientation diagnostique
        "DOCPAT05",
    ),
    Category.IMAGERIE: (
        "18748-4",  # CR d'imagerie médicale
        "52040-3",  # Image d'illustration non DICOM
        "IMG-KOS",
        "DOCPAT04",
    ),
    Category.LETTRE_LIAISON: (
        "11490-0",  # Lettre de liaison à la sortie d'un établissement de soins
        "18761-7",  # Note de transfert (lettre de liaison à l'entrée)
        "83981-1",  # Lettre de liaison à la sortie d'une structure médico-sociale
        "88348-8",  # Lettre de liaison d'entrée en structure médico-sociale
        "96349-6",  # Lettre d'adressage
        "74207-2",  # Document de liaison d'urgence
    ),
    Category.COMPTE_RENDU: (
        "11488-4",  # CR ou fiche de consultation ou de visite
        "11505-5",  # CR d'acte thérapeutique (autre)
        "11506-3",  # CR ou fiche de suivi de soins par auxiliaire médical
        "15507-7",  # CR de passage aux urgences
        "15508-5",  # CR d'accouchement
        "34112-3",  # CR hospitalier (séjour)
        "34749-2",  # CR de consultation pré-anesthésique
        "34794-8",  # CR de réunion de concertation pluridisciplinaire
        "34874-8",  # CR opératoire
        "47420-5",  # CR de bilan fonctionnel
        "59283-2",  # CR d'examen de l'enfant
        "60568-3",  # CR d'anatomie et de cytologie pathologiques
        "67851-6",  # CR d'admission
        "70004-7",  # CR d'acte diagnostique (autre)
        "77436-4",  # CR d'anesthésie
        "78513-9",  # CR de consultation en ophtalmologie
        "78601-2",  # CR d'entretien pharmaceutique
        "85208-7",  # CR de télémédecine
        "89233-1",  # CR de grossesse
        "93024-8",  # CR de consultation pharmaceutique
        "DOCPAT03",
    ),
    Category.SYNTHESE: (
        "34133-9",  # Synthèse d'épisode de soins
        "60591-5",  # Synthèse médicale
        "68599-0",  # Synthèse psychiatrique
        "57055-6",  # Synthèse antepartum
        "57057-2",  # Synthèse salle de naissance mère
        "57075-4",  # Synthèse salle de naissance enfant
        "78489-2",  # Synthèse enfant en maternité
        "84067-8",  # Synthèse transfusionnelle
        "89235-6",  # Synthèse suites de couches mère
        "SYNTH",
        "DOCPAT01",
    ),
    Category.CERTIFICAT: (
        "89601-9",  # Certificat médical
        "86531-1",  # Attestation de sortie
        "CERT_DECL",
        "DOCPAT07",
    ),
    Category.VACCINATION: (
        "11369-6",  # Historique des vaccinations
        "87273-9",  # Note de vaccination
        "96874-3",  # COVID-19 attestation de vaccination
    ),
    Category.PREVENTION: (
        "68817-6",  # Bilan de santé et de prévention de l'enfant
        "83869-8",  # Plan personnalisé de prévention
        "28617-9",  # Bilan bucco-dentaire
        "75492-9",  # CR d'acte diagnostique à visée préventive ou de dépistage
        "75482-0",  # CR d'acte thérapeutique à visée préventive
        "DOCPAT06",
    ),
    Category.ADMINISTRATIF: (
        "51851-4",  # Document administratif
        "REMB",
        "ATTEST-ASS-COMPL",
        "ATTEST-DROITS-AM",
        "PIECE-IDENTITE",
        "DOCPAT09",
    ),
}

TYPE_CODE_CATEGORIES: dict[str, Category] = {
    code: category for category, codes in _BY_CATEGORY.items() for code in codes
}


def category_for_type_code(code: str | None, scheme: str | None = None) -> Category:
    """The category of a document type code; ``autre`` when the code or its scheme is unknown."""
    if not code:
        return Category.AUTRE
    if scheme and scheme not in KNOWN_SCHEMES:
        return Category.AUTRE
    return TYPE_CODE_CATEGORIES.get(code.strip(), Category.AUTRE)
