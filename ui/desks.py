"""Desks: several archives in one deployment, and which API token reads or writes which.

A desk is a Chroma collection of the deployment's store (``economy``, ``sports``,
``embargoed``); :meth:`rag.assistant.Assistant.desk` opens one, sharing the models.
``KABAR_API_TOKENS`` holds the tokens, as JSON or the path of a JSON file::

    [{"token": "…", "name": "economy desk", "read": ["economy", "wire"], "write": ["economy"]},
     {"token": "…", "name": "sports desk", "read": ["sports", "wire"], "write": ["sports"]}]

A token may write only desks it may read (writing implies reading). A request names its
desk with ``?desk=`` or the ``X-Kabar-Desk`` header (the OpenAI-compatible endpoint also
takes ``model: "kabar/<desk>"``), else it goes to the token's first desk. A desk the token
does not read is answered 404 with the same words whether it exists or not, so a token
learns nothing of other desks; one it reads but does not write is 403 for ingest and
deletion. ``KABAR_API_TOKEN`` alone is one token over the default collection
(``KABAR_COLLECTION``); with no token at all (loopback only) every desk is open.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from rag.assistant import Assistant
from rag.errors import ConfigError, KabarError
from rag.settings import Settings

DESK_HEADER = "x-kabar-desk"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
DESK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]")
TOKENS_ENV = "KABAR_API_TOKENS"
USERS_ENV = "KABAR_UI_USERS"


class DeskDenied(KabarError):
    """A desk this token may not use: ``status`` 404 (not readable) or 403 (not writable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Grant:
    """What one token may do: the desks it reads and those it writes, in the order given."""

    name: str
    read: tuple[str, ...]
    write: tuple[str, ...]
    everything: bool = False  # no token configured (loopback only): the local user's own machine

    @property
    def default(self) -> str:
        return self.read[0]

    def choose(self, asked: str, write: bool = False) -> str:
        """The desk a request goes to (``asked``, else the first), or DeskDenied."""
        desk = asked.strip() or self.default
        if self.everything:
            if not DESK_NAME.fullmatch(desk):
                raise DeskDenied(404, f"no desk {desk[:80]!r}: desk names are 3-63 letters, digits, '.', '_' or '-'")
            return desk
        if desk not in self.read:
            raise DeskDenied(404, f"no desk {desk[:80]!r} for this token")
        if write and desk not in self.write:
            raise DeskDenied(403, f"this token may read desk {desk!r} but not add to it or delete from it")
        return desk


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def open_grant(settings: Settings) -> Grant:
    return Grant("local", (settings.collection,), (settings.collection,), everything=True)


class Tokens:
    """The deployment's tokens, looked up in constant time per token."""

    def __init__(self, grants: dict[str, Grant]) -> None:
        self._grants = [(token.encode(), grant) for token, grant in grants.items()]

    def __bool__(self) -> bool:
        return bool(self._grants)

    def grant(self, presented: bytes) -> Grant | None:
        found = None
        for token, grant in self._grants:  # every token compared: no early exit to time
            if hmac.compare_digest(presented, token):
                found = grant
        return found

    @classmethod
    def from_settings(cls, settings: Settings, token: str | None = None) -> "Tokens":
        """``KABAR_API_TOKENS``' grants, plus ``token`` (default ``KABAR_API_TOKEN``) over the default desk."""
        grants = parse_tokens(settings.api_tokens) if settings.api_tokens.strip() else {}
        single = settings.api_token if token is None else token
        if single:
            grants.setdefault(single, Grant("KABAR_API_TOKEN", (settings.collection,), (settings.collection,)))
        return cls(grants)


def parse_tokens(value: str) -> dict[str, Grant]:
    """Grants from ``KABAR_API_TOKENS``: inline JSON, or the path of a JSON file."""
    grants: dict[str, Grant] = {}
    for where, entry in _entries(value, TOKENS_ENV, "tokens"):
        token = entry.get("token")
        if not isinstance(token, str) or len(token) < 16:
            raise ConfigError(f"{where}: \"token\" must be a string of 16 characters or more")
        if token in grants:
            raise ConfigError(f"{where}: the same token is given twice")
        grants[token] = _grant(entry, where, str(entry.get("name") or where.rsplit(", ", 1)[-1]))
    return grants


def parse_users(value: str) -> dict[str, tuple[str, Grant]]:
    """The chat page's logins from ``KABAR_UI_USERS``: user -> (password, grant)."""
    users: dict[str, tuple[str, Grant]] = {}
    for where, entry in _entries(value, USERS_ENV, "users"):
        user, password = entry.get("user"), entry.get("password")
        if not isinstance(user, str) or not user.strip():
            raise ConfigError(f"{where}: \"user\" must be a non-empty string")
        if not isinstance(password, str) or len(password) < 12:
            raise ConfigError(f"{where} ({user}): \"password\" must be a string of 12 characters or more")
        if user in users:
            raise ConfigError(f"{where}: user {user!r} is given twice")
        users[user] = (password, _grant(entry, f"{where} ({user})", user))
    return users


def login_check(users: dict[str, tuple[str, Grant]]) -> Callable[[str, str], bool]:
    """Gradio's ``auth``: whether a user and password match, compared in constant time."""
    def check(user: str, password: str) -> bool:
        ok = False
        for name, (secret, _grant) in users.items():
            ok |= hmac.compare_digest(name.encode(), (user or "").encode()) & \
                hmac.compare_digest(secret.encode(), (password or "").encode())
        return ok
    return check


def _entries(value: str, env: str, key: str) -> Iterator[tuple[str, dict[str, Any]]]:
    text = value.strip()
    where = env
    if not text.startswith(("[", "{")):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{env}: cannot read the file {path}: {e.strerror or e}") from None
        where = f"{env} file {path}"
    try:
        entries: Any = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where} is not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(entries, dict):
        entries = entries.get(key, entries)
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where} must be a JSON list of objects with \"read\" and \"write\" desks")
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}, entry {n}: expected an object with \"read\" and \"write\"")
        yield f"{where}, entry {n}", entry


def _grant(entry: dict[str, Any], where: str, name: str) -> Grant:
    desks: dict[str, tuple[str, ...]] = {}
    for key in ("read", "write"):
        value = entry.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
            raise ConfigError(f"{where}: \"{key}\" must be a list of desk names")
        for desk in value:
            if not DESK_NAME.fullmatch(desk):
                raise ConfigError(f"{where}: {desk!r} is not a desk name (3-63 letters, digits, '.', '_' "
                                  "or '-', starting and ending with a letter or digit)")
        desks[key] = tuple(dict.fromkeys(value))
    read = tuple(dict.fromkeys(desks["read"] + desks["write"]))  # writing a desk implies reading it
    if not read:
        raise ConfigError(f"{where}: reads no desk")
    return Grant(name, read, desks["write"])


def upload_folder(base: Settings, desk: Settings) -> Path:
    """Where uploads to a desk are kept: ``uploads/`` for the default collection, ``uploads/desks/<desk>/``
    for another (the same file name on two desks is two files)."""
    folder = base.data_dir / "uploads"
    return folder if desk.collection == base.collection else folder / "desks" / desk.collection


def desk_assistant(base: Assistant, grant: Grant, asked: str, write: bool = False) -> Assistant:
    """The assistant over the desk a request may use (see :meth:`Grant.choose`)."""
    return base.desk(grant.choose(asked, write))
