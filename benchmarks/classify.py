"""Bounce classification throughput: ``python -m benchmarks.classify``.

Classifies every message of the bounce corpus repeatedly on one core and prints
messages per second; the last line is one JSON object with ``msgs_per_s``.
Corpus: $BOUNCE_CORPUS, else ../shared/corpus/bounces beside the project, else the
project's own fixtures (tests/fixtures/bounces). No Django needed.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deliverability.bounces.mime import bytes_to_text, parse_entity  # noqa: E402
from deliverability.classify import classify_message, rules  # noqa: E402

GOAL = 2000.0


def corpus_files() -> tuple[str, list[Path]]:
    candidates = [os.environ.get("BOUNCE_CORPUS"), ROOT.parent / "shared" / "corpus" / "bounces",
                  ROOT / "tests" / "fixtures" / "bounces"]
    for c in candidates:
        if c and Path(c).is_dir():
            files = sorted(p for p in Path(c).rglob("*.eml") if p.is_file())
            if files:
                return str(c), files
    sys.exit("no corpus found (set BOUNCE_CORPUS)")


def rate(func, messages: list[bytes], seconds: float) -> tuple[float, list[float]]:
    """Messages per second over rounds of the whole set; median of the rounds."""
    rounds: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rounds) < 3:
        t0 = time.perf_counter()
        for raw in messages:
            func(raw)
        rounds.append(len(messages) / (time.perf_counter() - t0))
    return statistics.median(rounds), rounds


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    where, files = corpus_files()
    messages = [p.read_bytes() for p in files]
    rules()  # load and compile the rules outside the timing
    for raw in messages:  # warm caches
        classify_message(raw)
    gc.collect()
    # Baseline in the same run: only the MIME reading, the floor of any classifier.
    base, _ = rate(lambda raw: parse_entity(bytes_to_text(raw)), messages, seconds / 4)
    mps, rounds = rate(classify_message, messages, seconds)
    results = sum(len(classify_message(raw)) for raw in messages)
    print(f"corpus: {where} ({len(messages)} messages, {results} results)")
    print(f"rounds: {len(rounds)}, msgs/s min {min(rounds):.0f} median {mps:.0f} "
          f"max {max(rounds):.0f}")
    print(f"MIME reading alone: {base:.0f} msgs/s; classification costs {base / mps:.2f}x that")
    print(f"goal {GOAL:.0f} msgs/s: {'met' if mps >= GOAL else 'NOT met'}")
    print(json.dumps({"benchmark": "classify", "messages": len(messages),
                      "msgs_per_s": round(mps, 1), "msgs_per_s_min": round(min(rounds), 1),
                      "mime_only_msgs_per_s": round(base, 1),
                      "ratio_to_mime_only": round(base / mps, 3), "goal": GOAL,
                      "rules_version": rules().version}))


if __name__ == "__main__":
    main()
