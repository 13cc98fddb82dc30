"""Policy engine throughput: decisions per second over a realistic mix, and memory per decision.

    .venv/bin/python bench/policy.py [--count 200000] [--repeat 3]

The mix (per 100 decisions): 55 professional → citizen (bulk convocations, reports; a few
closed, opposed, unknown or malformed addresses and [FIN] messages), 15 professional →
professional, 15 citizen → professional (open, ended, never contacted), 6 citizen → pharmacy,
3 citizen → citizen or outside, 3 delivery reports, 3 documents invisible to the patient. Facts are
built once (the caller's work is not measured, except on the "build facts + evaluate" line);
each scenario runs --repeat times and the best run is printed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from plitest.policy import DAY, ENDED, NOW, OPEN, app, citizen, external, org, per, pharmacy

from pli.policy.effects import conversation_effects
from pli.policy.engine import evaluate
from pli.policy.explain import explain
from pli.policy.facts import NO_EXCHANGE, Facts, MessageTraits, Party, ProfileStatus
from pli.policy.ins import make_ins


def _citizens(rng: random.Random, count: int) -> list[str]:
    return [make_ins(f"{rng.choice('12')}{rng.randrange(10**12):012d}") for _ in range(count)]


def build_mix(rng: random.Random, size: int) -> list[Facts]:
    """``size`` facts, drawn with the proportions of the module docstring."""
    inses = _citizens(rng, 500)
    pros = [per(f"dr.{i}") for i in range(20)] + [org(f"service{i}") for i in range(10)]
    pros += [app("cr-noreply"), app("rdv", no_reply=False)]
    ordinary = MessageTraits(subject="Convocation", message_id="<m@ch>")
    ending = MessageTraits(subject="[FIN]", message_id="<fin@ch>")
    hidden = MessageTraits(subject="CR", invisible_to_patient=True)
    profiles = [ProfileStatus.OPEN] * 46 + [
        ProfileStatus.CLOSED,
        ProfileStatus.OPPOSED,
        ProfileStatus.UNKNOWN,
    ]
    mix: list[Facts] = []
    for _ in range(size):
        roll = rng.randrange(100)
        someone = citizen(rng.choice(inses), rng.choice(profiles))
        pro = rng.choice(pros)
        if roll < 55:
            message = ending if roll == 0 else ordinary
            if roll == 1:
                someone = Party.citizen("dupont@patient.mssante.fr", ProfileStatus.UNKNOWN)
            mix.append(Facts(pro, someone, NOW, message=message))
        elif roll < 70:
            mix.append(Facts(pro, rng.choice(pros), NOW, message=ordinary))
        elif roll < 85:
            exchange = rng.choice([OPEN, OPEN, ENDED, NO_EXCHANGE])
            mix.append(Facts(citizen(rng.choice(inses)), pro, NOW, exchange, message=ordinary))
        elif roll < 91:
            last = rng.choice([None, NOW - 30 * DAY, NOW - 400 * DAY])
            mix.append(Facts(citizen(rng.choice(inses)), pharmacy(), NOW, last_dispensation=last))
        elif roll < 94:
            to = rng.choice([citizen(rng.choice(inses)), external()])
            mix.append(Facts(citizen(rng.choice(inses)), to, NOW, message=ordinary))
        elif roll < 97:
            mix.append(Facts(Party.null(), someone, NOW, message=ordinary))
        else:
            mix.append(Facts(pro, citizen(rng.choice(inses)), NOW, message=hidden))
    return mix


def _rcpt(facts: list[Facts]) -> list[Facts]:
    return [Facts(f.sender, f.recipient, f.now, f.exchange, f.last_dispensation) for f in facts]


def _time(work: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def _transient_bytes(work: Callable[[Facts], object], mix: list[Facts]) -> float:
    """Mean peak of memory allocated during one call (tracemalloc), results kept aside."""
    sample = mix[:2000]
    for facts in sample:  # warm caches (interned strings, enum lookups)
        work(facts)
    total = 0
    tracemalloc.start()
    for facts in sample:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        work(facts)
        total += tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return total / len(sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000, help="decisions per scenario")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (best kept)")
    args = parser.parse_args()
    count = max(1000, min(args.count, 5_000_000))  # bounded: a shared machine
    rng = random.Random(5)
    mix = build_mix(rng, count)
    rcpt = _rcpt(mix)

    def effects(facts: Facts) -> object:
        return conversation_effects(facts, evaluate(facts))

    def rebuild(facts: Facts) -> object:
        copy = Facts(
            facts.sender, facts.recipient, facts.now, facts.exchange, message=facts.message
        )
        return evaluate(copy)

    scenarios: list[tuple[str, list[Facts], Callable[[Facts], object]]] = [
        ("evaluate at RCPT (envelope facts)", rcpt, evaluate),
        ("evaluate at DATA (with message traits)", mix, evaluate),
        ("evaluate + conversation_effects", mix, effects),
        ("build facts + evaluate", mix, rebuild),
        ("explain (trace, for operators)", mix[: count // 10], explain),
    ]
    accepted = sum(evaluate(f).accepted for f in mix)
    print(f"policy engine, {count} decisions per scenario, best of {args.repeat}")
    print(f"mix: {accepted / len(mix):.0%} accepted, Python {sys.version.split()[0]}")
    print()
    print(f"{'scenario':<42} {'decisions/s':>12} {'µs/decision':>12} {'bytes allocated':>15}")
    for name, facts_list, work in scenarios:

        def run(
            facts_list: list[Facts] = facts_list, work: Callable[[Facts], object] = work
        ) -> None:
            for facts in facts_list:
                work(facts)

        seconds = _time(run, args.repeat)
        rate = len(facts_list) / seconds
        memory = _transient_bytes(work, facts_list)
        print(f"{name:<42} {rate:>12,.0f} {1e6 / rate:>12.2f} {memory:>15.0f}")


if __name__ == "__main__":
    main()
