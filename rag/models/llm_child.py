"""The local LLM server's own process: llama.cpp's OpenAI-compatible server, tied to Kabar.

:class:`rag.models.local_llm.LocalLlamaServer` starts ``python -m rag.models.llm_child <server args>``
with a pipe as its standard input and keeps the other end. This module watches that pipe
from a thread and ends the process when it reads end-of-file: that happens when the Kabar
process that owns the server exits, however it exits (SIGKILL included), and whichever of
its threads started the server. (Linux's PR_SET_PDEATHSIG, used before, fires when the
starting *thread* ends, which killed a server started from a short-lived thread.)

Everything else is ``python -m llama_cpp.server``, unchanged.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading


def exit_when_parent_goes(fd: int = 0) -> threading.Thread:
    """End this process as soon as ``fd`` (the pipe from Kabar) reaches end-of-file."""

    def watch() -> None:
        try:
            while os.read(fd, 4096):
                pass  # Kabar never writes; anything read is ignored
        except OSError:
            pass
        # No graceful shutdown: nothing here is worth saving, and an answer being generated
        # would otherwise hold the process until it finished.
        os._exit(0)

    thread = threading.Thread(target=watch, name="kabar-owner-watch", daemon=True)
    thread.start()
    return thread


def main(argv: list[str]) -> None:
    exit_when_parent_goes(0)
    sys.argv = ["llama_cpp.server", *argv]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
