"""``pli stats``: the usage indicators per establishment and ISO week (mailgateway/bulk/stats.py)
on SQLite and PostgreSQL, their renderings, and the command as a real process."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from plitest.bulk import add_citizens, csv_lines, write_campaign
from plitest.process import run_pli
from plitest.smtp import smtp_stack
from plitest.usage import (
    REMOTE_NAME,
    REMOTE_STRUCTURE,
    STRUCTURE,
    STRUCTURE_NAME,
    Activity,
    write_activity,
)

from pli.config.loading import load_settings
from pli.mailbox.store import Store
from pli.mailbox.store.records import ProfileStatus
from pli.mailgateway.bulk.check import BulkContext, open_campaign
from pli.mailgateway.bulk.runner import run_campaign
from pli.mailgateway.bulk.stats import (
    MAX_WEEKS,
    UNKNOWN,
    Period,
    StatsError,
    UsageReport,
    UsageStats,
    WeekFigures,
    week_label,
)
from pli.mailgateway.bulk.stats_command import (
    COLUMNS,
    NAME_WIDTH,
    render_csv,
    render_json,
    render_table,
)

W13, W14 = date(2025, 3, 24), date(2025, 3, 31)
#: Every row the two weeks W13-W14 must show (establishments sorted by key).
EXPECTED = [
    # establishment, name, week, monday, sent, received, convocations, campaign, filed, cumulative
    ("-", "", "2025-W13", W13, 0, 0, 0, 0, 0, 0, 0),
    ("-", "", "2025-W14", W14, 0, 0, 0, 0, 1, 0, 0),
    ("330000001", REMOTE_NAME, "2025-W13", W13, 0, 0, 0, 0, 0, 0, 0),
    ("330000001", REMOTE_NAME, "2025-W14", W14, 1, 0, 0, 0, 0, 1, 0),
    ("750100001", STRUCTURE_NAME, "2025-W13", W13, 2, 1, 0, 1, 0, 3, 1),
    ("750100001", STRUCTURE_NAME, "2025-W14", W14, 2, 0, 2, 2, 2, 5, 1),
    ("@cabinet-solo.mssante.fr", "", "2025-W13", W13, 0, 0, 0, 0, 0, 0, 0),
    ("@cabinet-solo.mssante.fr", "", "2025-W14", W14, 1, 0, 0, 0, 0, 1, 0),
]


def as_tuples(rows: list[WeekFigures]) -> list[tuple[object, ...]]:
    return [
        (
            r.establishment,
            r.name,
            r.week,
            r.monday,
            r.sent,
            r.received,
            r.convocations,
            r.campaign_messages,
            r.documents_filed,
            r.sent_total,
            r.received_total,
        )
        for r in rows
    ]


# -- periods -------------------------------------------------------------------------------------


def test_a_period_is_widened_to_whole_iso_weeks() -> None:
    period = Period.covering(date(2025, 3, 26), date(2025, 4, 1))  # Wednesday … Tuesday
    assert period.mondays == (W13, W14)
    assert (period.first, period.last) == (W13, date(2025, 4, 6))
    assert [week_label(m) for m in period.mondays] == ["2025-W13", "2025-W14"]


def test_week_bounds_follow_paris_daylight_saving_time() -> None:
    bounds = Period.covering(W13, W14).bounds
    assert bounds == [
        datetime(2025, 3, 23, 23, tzinfo=UTC),  # Monday 00:00 CET
        datetime(2025, 3, 30, 22, tzinfo=UTC),  # Monday 00:00 CEST
        datetime(2025, 4, 6, 22, tzinfo=UTC),
    ]
    reunion = Period.covering(W13, W13, "Indian/Reunion").bounds
    assert reunion[0] == datetime(2025, 3, 23, 20, tzinfo=UTC)


def test_iso_week_labels_at_year_ends() -> None:
    assert week_label(date(2024, 12, 30)) == "2025-W01"  # the week holding 2 January 2025
    assert week_label(date(2020, 12, 28)) == "2020-W53"


@pytest.mark.parametrize(
    ("first", "last", "zone", "words"),
    [
        (date(2025, 4, 1), date(2025, 3, 1), "Europe/Paris", "période vide"),
        (date(2000, 1, 1), date(2025, 1, 1), "Europe/Paris", f"{MAX_WEEKS} au plus"),
        (W13, W14, "Mars/Olympus_Mons", "fuseau horaire inconnu"),
        (W13, W14, "../../etc/passwd", "fuseau horaire inconnu"),
    ],
)
def test_periods_that_cannot_be_reported(first: date, last: date, zone: str, words: str) -> None:
    with pytest.raises(StatsError) as raised:
        Period.covering(first, last, zone)
    assert words in raised.value.text


# -- the figures (SQLite, and PostgreSQL when PLI_TEST_DATABASE_URL names one) --------------------


async def test_figures_per_establishment_and_week(activity: Activity) -> None:
    report = await UsageStats(activity.store).report(Period.covering(W13, W14))
    assert as_tuples(report.rows) == EXPECTED


async def test_one_establishment(activity: Activity) -> None:
    report = await UsageStats(activity.store).report(Period.covering(W13, W14), REMOTE_STRUCTURE)
    assert [row.establishment for row in report.rows] == [REMOTE_STRUCTURE] * 2
    unknown = await UsageStats(activity.store).report(Period.covering(W13, W14), UNKNOWN)
    assert [row.documents_filed for row in unknown.rows] == [0, 1]


async def test_the_week_after_counts_what_fell_on_monday_paris_time(activity: Activity) -> None:
    report = await UsageStats(activity.store).report(
        Period.covering(date(2025, 4, 7), date(2025, 4, 7))
    )
    assert as_tuples(report.rows) == [
        ("@cabinet-solo.mssante.fr", "", "2025-W15", date(2025, 4, 7), 1, 0, 0, 0, 0, 2, 0)
    ]


async def test_a_quiet_period_has_no_rows(activity: Activity) -> None:
    report = await UsageStats(activity.store).report(
        Period.covering(date(2023, 6, 1), date(2023, 6, 30))
    )
    assert report.rows == []
    assert render_table(report).splitlines()[-1] == "no activity"


async def test_renderings_carry_the_same_figures(activity: Activity) -> None:
    report = await UsageStats(activity.store).report(Period.covering(W13, W14))
    rows = list(csv.reader(io.StringIO(render_csv(report), newline="")))
    assert tuple(rows[0]) == COLUMNS
    assert [tuple(row) for row in rows[1:]] == [
        tuple(str(value.isoformat() if isinstance(value, date) else value) for value in expected)
        for expected in EXPECTED
    ]
    document = json.loads(render_json(report))
    assert (document["from"], document["to"], document["zone"]) == (
        "2025-03-24",
        "2025-04-06",
        "Europe/Paris",
    )
    assert document["weeks"] == ["2025-W13", "2025-W14"]
    assert document["rows"][5] == {
        "establishment": STRUCTURE,
        "name": STRUCTURE_NAME,
        "week": "2025-W14",
        "monday": "2025-03-31",
        "sent": 2,
        "received": 0,
        "convocations": 2,
        "campaign_messages": 2,
        "documents_filed": 2,
        "sent_total": 5,
        "received_total": 1,
    }
    table = render_table(report).splitlines()
    assert table[0] == "2025-03-24 – 2025-04-06 (2 weeks, Europe/Paris)"
    assert table[1].split() == [
        "establishment",
        "name",
        "week",
        "sent",
        "received",
        "convoc.",
        "campaign",
        "filed",
        "sent(cum)",
        "recv(cum)",
    ]
    assert table[7].split()[-8:] == ["2025-W14", "2", "0", "2", "2", "2", "5", "1"]
    assert len(table) == 2 + len(EXPECTED)


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://evil.example","CH")', "+1+1", "-2", "@SUM(A1)"]
)
def test_a_name_a_spreadsheet_could_run_is_quoted_in_csv_only(name: str) -> None:
    """CSV injection (OWASP): a structure name comes from the directory or an ORG mailbox's
    display name; the CSV shows it behind ``'``, JSON and the table show it as it is."""
    row = WeekFigures(STRUCTURE, name, "2025-W13", W13, sent=1)
    report = UsageReport(Period.covering(W13, W13), [row])
    cells = list(csv.reader(io.StringIO(render_csv(report), newline="")))[1]
    assert cells[:2] == [STRUCTURE, f"'{name}"]
    assert json.loads(render_json(report))["rows"][0]["name"] == name
    assert name[:NAME_WIDTH] in render_table(report)
    plain = UsageReport(report.period, [WeekFigures(STRUCTURE, "CH d'Exemple", "2025-W13", W13)])
    assert list(csv.reader(io.StringIO(render_csv(plain), newline="")))[1][1] == "CH d'Exemple"


# -- the command ---------------------------------------------------------------------------------

CONFIG = """\
[server]
data_dir = "."
[domains]
professional = ["ch-exemple.mssante.fr"]
"""


@pytest.fixture
async def configured(tmp_path: Path) -> Path:
    """A configuration whose store (its SQLite file) holds the activity."""
    path = tmp_path / "pli.toml"
    path.write_text(CONFIG)
    store = await Store.open(load_settings(path))
    try:
        await write_activity(store)
    finally:
        await store.close()
    return path


def test_pli_stats_prints_csv_json_and_table(configured: Path) -> None:
    period = ["--from", "2025-03-26", "--to", "2025-04-01"]
    as_csv = run_pli("stats", "-c", str(configured), *period, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    lines = as_csv.stdout.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[6] == f"{STRUCTURE},{STRUCTURE_NAME},2025-W14,2025-03-31,2,0,2,2,2,5,1"
    assert len(lines) == 1 + len(EXPECTED)

    as_json = run_pli("stats", "-c", str(configured), *period, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert len(json.loads(as_json.stdout)["rows"]) == len(EXPECTED)

    table = run_pli("stats", "-c", str(configured), *period, "--establishment", STRUCTURE)
    assert table.returncode == 0, table.stderr
    assert [line.split()[0] for line in table.stdout.splitlines()[2:]] == [STRUCTURE] * 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2025-04-02", "--to", "2025-04-01"], "période vide"),
        (["--zone", "Nowhere/Town"], "unknown time zone: Nowhere/Town"),
        (["--from", "2025-13-01"], "Invalid value for '--from'"),
        (["--format", "xml"], "Invalid value for '--format'"),
    ],
)
def test_pli_stats_refuses_bad_options(configured: Path, args: list[str], message: str) -> None:
    result = run_pli("stats", "-c", str(configured), *args)
    assert result.returncode in (1, 2)
    assert message in result.stderr
    assert result.stdout == ""


# -- a real campaign through the pipeline ----------------------------------------------------------


async def test_a_campaign_sent_through_the_pipeline_counts_as_sent_and_convocations(
    tmp_path: Path, database_url: str
) -> None:
    async with smtp_stack(
        tmp_path / "server", database_url, listeners=(), sections={"bulk": {"rate": 1000}}
    ) as stack:
        stats = UsageStats(stack.store)
        now = datetime.now(UTC).date()  # a day either side: a run across midnight UTC
        days = Period.covering(now - timedelta(days=1), now + timedelta(days=1), "UTC")
        before = await stats.report(days, STRUCTURE)  # the demo's compte rendu, sent today
        patients = await add_citizens(stack.store, 4)
        closed = (await add_citizens(stack.store, 1, status=ProfileStatus.CLOSED, start=9))[0]
        directory = write_campaign(tmp_path / "c", csv_lines([*patients, closed]))
        campaign = open_campaign(stack.settings, directory)
        result = await run_campaign(BulkContext.from_gateway(stack.gateway), campaign)
        assert (result.submitted, result.refused) == (4, 1)
        after = await stats.report(days, STRUCTURE)

    def totals(report: UsageReport) -> tuple[int, ...]:
        return tuple(
            sum(getattr(row, name) for row in report.rows)
            for name in ("sent", "received", "convocations", "campaign_messages")
        )

    assert totals(before) == (1, 0, 0, 0)
    assert totals(after) == (5, 0, 4, 4)
