"""A scripted HTTP server on 127.0.0.1 for tests: each request gets the next step of a script.

Steps answer with a status (and headers), stream server-sent events and then drop the
connection mid-body, or wait before answering. Written on raw sockets so that a dropped
stream is really dropped (no closing chunk), as a crashed or restarted server leaves it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Step:
    """One request's fate: ``status`` with ``body``; or ``events`` streamed (then ``drop``: cut
    the connection instead of finishing); ``delay_s`` before anything is sent."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] | None = None
    drop: bool = False
    delay_s: float = 0.0


def chunk_event(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1700000000, "model": "m", "choices": [choice]}


def embedding_body(n: int, dim: int = 4) -> dict[str, Any]:
    return {"object": "list", "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1},
            "data": [{"object": "embedding", "index": i, "embedding": [float(i + 1)] * dim} for i in range(n)]}


class FlakyServer:
    """Serves ``steps`` in order (the last one repeats); ``requests`` counts what arrived."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.requests: list[dict[str, Any]] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = self._read_request(conn)
            except OSError:
                return
            if request is None:
                return
            index = len(self.requests)
            self.requests.append(request)
            step = self.steps[min(index, len(self.steps) - 1)]
            if step.delay_s:
                time.sleep(step.delay_s)
            try:
                self._answer(conn, step)
            except OSError:
                pass

    @staticmethod
    def _read_request(conn: socket.socket) -> dict[str, Any] | None:
        data = b""
        while b"\r\n\r\n" not in data:
            part = conn.recv(65536)
            if not part:
                return None
            data += part
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            part = conn.recv(65536)
            if not part:
                break
            body += part
        method, path, _ = lines[0].split(" ", 2)
        return {"method": method, "path": path, "body": json.loads(body) if body else None}

    @staticmethod
    def _answer(conn: socket.socket, step: Step) -> None:
        headers = dict(step.headers)
        if step.events is None:
            body = json.dumps(step.body if step.body is not None else {"error": {"message": f"status {step.status}"}})
            headers.setdefault("content-type", "application/json")
            head = f"HTTP/1.1 {step.status} X\r\ncontent-length: {len(body.encode())}\r\nconnection: close\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            conn.sendall((head + "\r\n").encode() + body.encode())
            return
        head = ("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                "connection: close\r\n")
        conn.sendall((head + "\r\n").encode())
        for e in step.events:
            data = f"data: {json.dumps(e)}\n\n".encode()
            conn.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            time.sleep(0.01)
        if step.drop:
            conn.shutdown(socket.SHUT_RDWR)  # no closing chunk: the body is cut short
            return
        done = b"data: [DONE]\n\n"
        conn.sendall(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")

    def close(self) -> None:
        self._stop = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone leaves listening
        except OSError:
            pass
        self._sock.close()

    def __enter__(self) -> "FlakyServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
