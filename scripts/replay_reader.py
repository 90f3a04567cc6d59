"""Kabar's reader replayed over full-answer runs: its gate, its repair and its span as the answer.

    KABAR_READER=1 kabar eval run ../shared/data/idkmrc-id --half tune --limit 40 --out runs/fa/idkmrc-id-tune
    .venv/bin/python scripts/replay_reader.py runs/fa/idkmrc-id-tune runs/fa/idkmrc-id-check ...

The runs are made with the reader on and its gate and repair off (the defaults), so each
question records the model's checked answer, whether Kabar declined it, and the reader's best
span and margin over the same sources (``reader``; ``--readings`` takes them from other runs,
e.g. retrieval-only runs with other reader weights). Replayed per run folder, for each policy:

- ``model``: the answers as recorded;
- ``gate T``: a one-fact question whose reader margin is below T is declined;
- ``repair T``: a one-fact answer that does not say the reader's span (``agrees``) when the
  margin is at least T becomes the span;
- ``span T``: a one-fact question whose margin is at least T is answered with the span.

The gate and the span apply only where the question is asked in the passages' language
(``--lang``, Indonesian for idkmrc-id and facqa-id), as in Kabar. Prints answer F1 (a
refusal counts 0), contains and refusal F1 per folder; pick on the tuning halves, keep only
what the checking halves confirm.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.metrics import contains_reference, refusal_scores, strip_citations, token_f1  # noqa: E402
from rag.answer.evidence import agrees  # noqa: E402


def load(folder: Path, readings: Path | None = None) -> list[dict]:
    """The questions of a ``kabar eval run`` folder, with what the reader found for each; with
    ``readings`` (another run's folder, e.g. ``--retrieval-only`` with other reader weights over
    the same collection), the reader's margin and span come from that run, matched by id."""
    other = {r["id"]: r for r in load(readings)} if readings else {}
    rows = []
    for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        r = d.get("reader") or {}
        margin = r.get("margin")
        rows.append({"id": d["id"], "answerable": d["answerable"],
                     "answers": (d.get("gold") or {}).get("answers") or [],
                     "answer": strip_citations(d.get("answer") or ""), "refused": bool(d.get("refused")),
                     "lang": d.get("lang", ""), "one_fact": bool(r.get("one_fact")),
                     "span": r.get("span") or "", "margin": -math.inf if margin is None else float(margin),
                     "ttft": (d.get("timings") or {}).get("ttft_ms")})
        if other:
            rows[-1].update({k: other[d["id"]][k] for k in ("margin", "span", "one_fact")})
    return rows


def policy(rows: list[dict], lang: str, gate: float = -math.inf, repair: float = math.inf,
           span: float = math.inf) -> dict:
    """Answer F1, contains and refusal F1 of ``rows`` under one policy."""
    refused, f1s, contains = [], [], []
    for r in rows:
        text, ref = r["answer"], r["refused"]
        judged = r["one_fact"] and r["lang"] == lang and r["span"]
        if r["one_fact"] and r["lang"] == lang and r["margin"] < gate:
            text, ref = "", True
        elif judged and r["margin"] >= span:
            text, ref = r["span"], False
        elif judged and r["margin"] >= repair and (ref or not agrees(text, r["span"])):
            text, ref = r["span"], False
        refused.append(ref)
        if r["answerable"] and r["answers"]:
            f1s.append(0.0 if ref else token_f1(text, r["answers"]) or 0.0)
            contains.append(0.0 if ref else contains_reference(text, r["answers"]) or 0.0)
    out = refusal_scores([r["answerable"] for r in rows], refused)
    out["answer_f1"] = sum(f1s) / len(f1s) if f1s else None
    out["contains"] = sum(contains) / len(contains) if contains else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--lang", default="id", help="the passages' language (default id)")
    ap.add_argument("--thresholds", default="-2,-1,0,1,2,3,4,6,8")
    ap.add_argument("--readings", nargs="*", type=Path, default=[],
                    help="for each run, a run whose reader margins and spans replace its own (same ids)")
    args = ap.parse_args(argv)
    grid = [float(t) for t in args.thresholds.split(",")]
    policies: list[tuple[str, dict]] = [("model", {})]
    policies += [(f"gate {t:+g}", {"gate": t}) for t in grid]
    policies += [(f"repair {t:+g}", {"repair": t}) for t in grid]
    policies += [(f"span {t:+g}", {"span": t}) for t in grid]
    policies += [(f"gate {g:+g} span {s:+g}", {"gate": g, "span": s}) for g in (-1, 0, 1) for s in grid if s > g]
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    print("| run | policy | answer F1 | contains | refusal P | refusal R | refusal F1 |")
    print("|---|---|---|---|---|---|---|")
    if args.readings and len(args.readings) != len(args.runs):
        ap.error("--readings needs one folder for each run")
    for i, folder in enumerate(args.runs):
        rows = load(folder, args.readings[i] if args.readings else None)
        for name, kw in policies:
            m = policy(rows, args.lang, **kw)
            print(f"| {folder.name} | {name} | {fmt(m['answer_f1'])} | {fmt(m['contains'])} "
                  f"| {fmt(m['refusal_precision'])} | {fmt(m['refusal_recall'])} | {fmt(m['refusal_f1'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
