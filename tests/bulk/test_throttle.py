"""The token bucket with a fake clock: ``burst`` at once, then ``rate`` per second; and a
campaign run through it takes as many tokens as it submits rows (counts, not timings)."""

from __future__ import annotations

from pathlib import Path

from plitest.bulk import add_citizens, csv_lines, write_campaign
from plitest.smtp import SmtpStack

from pli.mailgateway.bulk.check import BulkContext, open_campaign
from pli.mailgateway.bulk.runner import CampaignRunner, TokenBucket, register_campaign


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_burst_then_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 5, clock=clock)
    assert [bucket.try_take() for _ in range(5)] == [0.0] * 5
    assert bucket.try_take() == 0.1  # the sixth waits for a tenth of a second
    clock.now += 1.0
    taken = sum(1 for _ in range(50) if bucket.try_take() == 0.0)
    assert taken == 5  # ten accrued, but the bucket holds five at most
    clock.now += 0.35
    assert sum(1 for _ in range(50) if bucket.try_take() == 0.0) == 3


async def test_taking_n_tokens_lasts_n_minus_burst_over_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(20, 4, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(104):
        await bucket.take()
    assert bucket.taken == 104
    assert round(clock.now - start, 6) == 5.0  # (104 - 4) / 20 seconds of (fake) waiting


async def test_a_campaign_takes_one_token_per_submitted_row(
    stack: SmtpStack, context: BulkContext, tmp_path: Path
) -> None:
    patients = await add_citizens(stack.store, 30)
    campaign = open_campaign(stack.settings, write_campaign(tmp_path / "c", csv_lines(patients)))
    await register_campaign(context, campaign)
    clock = FakeClock()
    bucket = TokenBucket(5, 2, clock=clock, sleep=clock.sleep)
    result = await CampaignRunner(context, campaign, bucket=bucket).run()
    assert result.submitted == 30 and bucket.taken == 30
    assert round(sum(clock.slept), 6) == (30 - 2) / 5  # never faster than rate and burst allow
