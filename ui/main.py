"""The ``kabar`` command: one parser, the subcommands of every package, errors in one line.

The library's subcommands come from :mod:`rag.cli` (ask, docs, delete, info, doctor,
serve-llm), the others from the package of their stage: :mod:`ingest.cli` (ingest),
:mod:`eval.cli` (eval) and :mod:`ui.cli` (ui, serve). Each ``register`` adds its parsers and
imports nothing heavy; each command builds its settings with
:meth:`rag.settings.Settings.from_args`. This is the top of the dependency graph: nothing
imports it.

Errors print one line (``kabar: error: ...``) and exit with status 1; Ctrl-C exits with 130.
No tracebacks unless KABAR_DEBUG is set.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import eval.cli
import ingest.cli
import rag.cli
import ui.cli
from rag.errors import KabarError
from rag.settings import debug


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kabar",
                                     description="Question answering over news articles, with cited answers.")
    parser.add_argument("--data-dir", help="where the store and the model live (env KABAR_DATA_DIR)")
    parser.add_argument("--collection", help="collection name (env KABAR_COLLECTION)")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (rag.cli.register, ingest.cli.register, eval.cli.register, ui.cli.register):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (KabarError, ValueError) as e:
        if debug():
            raise
        print(f"kabar: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kabar: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
