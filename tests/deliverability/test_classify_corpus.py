"""Accuracy on the shared bounce corpus (labels by sisimai), where it is present.

Finds the corpus through $BOUNCE_CORPUS or ../shared/corpus/bounces beside the
project; files are read in place, never copied into the project.
"""

import json
import os
from pathlib import Path

import pytest

from deliverability.classify import classify_message

PROJECT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("BOUNCE_CORPUS") or PROJECT.parent / "shared" / "corpus" / "bounces")

# Targets of issue 6.
KIND_TARGET, REASON_TARGET, RECALL_TARGET, PRECISION_TARGET = 0.97, 0.93, 0.97, 0.99


def _norm(a):
    return (a or "").strip().strip("<>").lower() or None


@pytest.fixture(scope="module")
def scores():
    labels = CORPUS / "labels.jsonl"
    if not labels.is_file():
        pytest.skip(f"bounce corpus not present at {CORPUS} (set BOUNCE_CORPUS to run this test)")
    by_file = {}
    for line in labels.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            by_file.setdefault(row["file"], []).append(row)
    m = dict(rows=0, kind=0, reason=0, tp=0, fn=0, fp=0, block_hard=0, neg=0, neg_ok=0)
    for name, rows in by_file.items():
        preds = classify_message((CORPUS / name).read_bytes())
        rows.sort(key=lambda r: r["index"])
        if rows[0].get("not_bounce"):
            m["neg"] += 1
            m["neg_ok"] += all(p["kind"] in ("delivered", "unknown") for p in preds)
            continue
        left = list(range(len(preds)))
        pairs = []
        labelled = all(r.get("recipient") for r in rows)
        rest = []
        for r in rows:
            ok = {r.get("recipient")} | set(r.get("recipient_alt") or [])
            hit = next((i for i in left if labelled and _norm(preds[i]["recipient"]) in ok), None)
            if hit is None:
                rest.append(r)
            else:
                left.remove(hit)
                pairs.append((r, preds[hit]))
        if labelled:
            m["tp"] += len(pairs)
            m["fn"] += len(rows) - len(pairs)
            m["fp"] += len(preds) - len(pairs)
        for r in rest:
            pairs.append((r, preds[left.pop(0)] if left else None))
        for r, p in pairs:
            m["rows"] += 1
            m["kind"] += bool(p) and p["kind"] == r["kind"]
            m["reason"] += bool(p) and p["reason"] == r["reason"]
            m["block_hard"] += r["kind"] == "block" and bool(p) and p["hard"] is True
    return m


def test_corpus_floor(scores):
    """Regression floor at the level reached (see the report of the classification work)."""
    m = scores
    # measured kind 97.7 %, reason 95.7 %: floors a little below the level reached
    assert m["kind"] / m["rows"] >= 0.975
    assert m["reason"] / m["rows"] >= 0.955
    assert m["tp"] / (m["tp"] + m["fn"]) >= RECALL_TARGET
    assert m["tp"] / (m["tp"] + m["fp"]) >= PRECISION_TARGET
    assert m["neg_ok"] == m["neg"]


def test_blocks_are_rarely_hard(scores):
    # A block is a fact about the sender: it never condemns the address.
    assert scores["block_hard"] == 0
