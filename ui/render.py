"""Turning the Python API's results into what the page shows: Markdown, HTML, table rows.

Pure functions with no Gradio import, so they are tested directly. Everything that comes
from a document (titles, sources, passages) is data, never markup: it is HTML-escaped
here, and Markdown-escaped where it goes into a chat message. The chat history the page
keeps is converted back into the ``{"role", "content"}`` list the API takes.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import Any

from rag.store import DocumentInfo
from rag.types import Answer, Hit, also_published, source_articles, source_facts

#: Starts every error message in the chat; such messages are left out of the history.
ERROR_MARK = "⚠️"
#: The collapsed "Sources" message under each answer carries this metadata title prefix.
SOURCES_TITLE = "Sources"

EMPTY_SOURCES = (
    '<div class="kabar-sources"><p class="kabar-muted">Sources appear here as soon as you ask: the articles found, '
    "their passages numbered as in the answer, the cited ones marked ★.</p></div>"
)
SEARCHING = "Searching the articles…"
EMPTY_TIMELINE = ('<div class="kabar-timeline"><p class="kabar-muted">A story\'s articles in date order, one line '
                  "each with its date, outlets and source: enter a topic (\"Alibaba cloud\", \"pusat data "
                  "Telkom\").</p></div>")
QUEUED = "Waiting for a free slot: other answers are being written…"

DOCUMENT_HEADERS = ["Title", "Source", "Chunks", "Ingested", "ID"]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&])")
_MESSAGE_SPECIAL = re.compile(r"([\\*_\[\]<>~$&|])")


# -- chat history -------------------------------------------------------------------------


def message_text(message: dict[str, Any]) -> str:
    """A chat message's text, whether the content is a string or Gradio's list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def is_error(message: dict[str, Any]) -> bool:
    return message.get("role") == "assistant" and message_text(message).startswith(ERROR_MARK)


def is_annotation(message: dict[str, Any]) -> bool:
    """A message the page adds for the reader (sources, notes), not part of the conversation."""
    metadata = message.get("metadata") or {}
    return bool(metadata.get("title"))


def api_history(chat: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation as the API takes it: questions and answers only.

    Source lists and error messages are the page's, not the conversation's; a question that
    only got an error is dropped with it, so a retry does not see it twice.
    """
    history: list[dict[str, str]] = []
    for message in chat:
        role = message.get("role")
        if role not in ("user", "assistant") or is_annotation(message):
            continue
        if is_error(message):
            if history and history[-1]["role"] == "user":
                history.pop()
            continue
        text = message_text(message).strip()
        if text:
            history.append({"role": str(role), "content": text})
    return history


def status_message(title: str) -> dict[str, Any]:
    """A pending line in the chat that says what is happening before the answer's first word."""
    return {"role": "assistant", "content": "", "metadata": {"title": title, "status": "pending"}}


def is_status(message: dict[str, Any]) -> bool:
    return (message.get("metadata") or {}).get("status") == "pending" and not message_text(message)


def error_message(problem: str) -> dict[str, str]:
    """An assistant message that says what went wrong (escaped: it may name a file)."""
    return {"role": "assistant", "content": f"{ERROR_MARK} **Could not answer:** {message_escape(problem)}"}


# -- sources ------------------------------------------------------------------------------


def md_escape(text: str) -> str:
    """``text`` shown literally in Markdown: no tags, links, emphasis or maths from data."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def message_escape(text: str) -> str:
    """Kabar's own messages in Markdown: no tags, links or emphasis from a file name in them,
    while URLs stay links and `commands` stay code."""
    return _MESSAGE_SPECIAL.sub(r"\\\1", text)


def _where(hit: Hit) -> tuple[str, str]:
    """(shown text, link or "") for a source: its URL if it has one, else the file name."""
    c = hit.chunk
    url = c.url or (c.source if c.source.startswith(("http://", "https://")) else "")
    if url.startswith(("http://", "https://")):
        return url, url
    return source_label(c.source), ""


def source_label(source: str) -> str:
    """A short name for where a document came from: a file's name, else the source as is."""
    if "/" in source or "\\" in source:
        path, _, line = source.partition(".jsonl:")
        if line:  # a corpus record: "file.jsonl:12"
            return f"{PurePath(path).name}.jsonl:{line}"
        return PurePath(source).name or source
    return source


def _cited(answer: Answer) -> set[int]:
    return {c.number for c in answer.citations}


def _unsupported(answer: Answer) -> set[int]:
    """Cited sources whose passage Kabar could not match to the sentence citing them."""
    return {c.number for c in answer.citations if not getattr(c, "verified", True)}


def reading_status(articles: int, waiting: bool = False, starting: bool = False) -> str:
    """What the chat says while the model reads the sources, before its first word."""
    what = f"Reading {articles} article{'s' if articles != 1 else ''}…" if articles else "Thinking…"
    if starting:
        return f"Starting the local model, then {what[0].lower()}{what[1:]}"
    if waiting:
        return f"Waiting for another answer to finish, then {what[0].lower()}{what[1:]}"
    return what


def _supports(answer: Answer) -> dict[int, tuple[int, int]]:
    """Cited source number -> the offsets in its passage of the sentence that supports the answer."""
    return {c.number: tuple(c.sentence) for c in answer.citations if getattr(c, "sentence", None)}


def _article_items(sources: Sequence[Hit], cited: set[int], unsupported: set[int],
                   supports: dict[int, tuple[int, int]] | None = None) -> str:
    """One list item per article, its passages under it, numbered as in the text; the sentence
    that supports the answer, when Kabar's reader found it, quoted first and marked in its passage."""
    items = []
    for article in source_articles(sources):
        c = article.chunk
        shown, link = _where(article.passages[0][1])
        where = (f'<a href="{html.escape(link, quote=True)}" target="_blank" rel="noopener noreferrer">'
                 f"{html.escape(shown)}</a>" if link else
                 f'<span title="{html.escape(c.source, quote=True)}">{html.escape(shown)}</span>')
        numbers = "".join(f"[{n}]" for n in article.numbers)
        star = '<span class="kabar-star" title="cited in the answer">★</span> ' if cited & set(article.numbers) else ""
        passages = []
        for n, hit in article.passages:
            mark = ""
            if n in unsupported:
                mark = ('<span class="kabar-star kabar-unsupported" title="cited, but this passage does not seem '
                        'to support the sentence">☆ cited, unconfirmed</span>')
            elif n in cited:
                mark = '<span class="kabar-star" title="cited in the answer">★</span>'
            sentence = (supports or {}).get(n) if n in cited else None
            quote = (f'<blockquote class="kabar-support" data-n="{n}">'
                     f'{html.escape(" ".join(hit.chunk.text[sentence[0]:sentence[1]].split()))}</blockquote>'
                     if sentence else "")
            passages.append(f'<div class="kabar-passage{" kabar-cited-passage" if n in cited else ""}" data-n="{n}">'
                            f'<span class="kabar-num">[{n}]</span> {mark}{quote}'
                            f'{_paragraphs(hit.chunk.text, sentence)}</div>')
        items.append(
            f'<li class="kabar-source{" kabar-cited" if star else ""}" data-doc="{html.escape(article.doc_id, True)}">'
            f'<div class="kabar-source-head"><span class="kabar-num">{numbers}</span> {star}'
            f'<span class="kabar-title">{html.escape(c.title or "(untitled)")}</span></div>'
            f'<div class="kabar-where">{where}{_facts(c)}</div>{"".join(passages)}</li>'
        )
    return f'<ol class="kabar-source-list">{"".join(items)}</ol>'


def pending_sources_html(sources: Sequence[Hit], status: str) -> str:
    """The sources panel while the model reads them: what was found, nothing marked yet."""
    if not sources:
        return f'<div class="kabar-sources"><p class="kabar-muted">{html.escape(status)}</p></div>'
    return (f'<div class="kabar-sources kabar-pending"><h3>{html.escape(status)}</h3>'
            f"{_article_items(sources, set(), set())}</div>")


def sources_html(answer: Answer) -> str:
    """The sources panel for one answer: one entry per article, its passages numbered as in the
    text, the cited ones marked ★."""
    if not answer.sources:
        return '<div class="kabar-sources"><p class="kabar-muted">No passages were retrieved for this answer.</p></div>'
    cited, unsupported = _cited(answer), _unsupported(answer)
    articles = source_articles(answer.sources)
    n_cited = sum(1 for a in articles if cited & set(a.numbers))
    summary = (f"{n_cited} of {len(articles)} articles cited" if cited else
               f"{len(articles)} articles, none cited")
    query = getattr(answer, "query", "")
    searched = (f'<p class="kabar-muted kabar-query">Searched for: {html.escape(query)}</p>'
                if query and query != answer.question else "")
    notes = "".join(f"<li>{html.escape(flag)}</li>" for flag in getattr(answer, "flags", []) or [])
    notes = f'<ul class="kabar-muted kabar-flags">{notes}</ul>' if notes else ""
    t = answer.timings
    footer = (f'<p class="kabar-muted kabar-timing">{t.sources_s:.1f}s to sources, {t.first_token_s:.1f}s to first '
              f"token, {t.total_s:.1f}s in all{' · ' + html.escape(answer.model) if answer.model else ''}</p>")
    return (f'<div class="kabar-sources"><h3>Sources <span class="kabar-muted">({summary})</span></h3>{searched}'
            f"{_article_items(answer.sources, cited, unsupported, _supports(answer))}{notes}{footer}</div>")


def _facts(c: Any) -> str:
    """Outlet, date, author, page and the story's other outlets, escaped, after the link."""
    facts = source_facts(c.source, c.published, c.author, c.page)
    out = f' <span class="kabar-muted kabar-facts">{html.escape(facts)}</span>' if facts else ""
    also = also_published(c.alternatives)
    links = "".join(f' <a href="{html.escape(a.url, quote=True)}" target="_blank" rel="noopener noreferrer">'
                    f"[{html.escape(a.source or a.url)}]</a>" for a in c.alternatives
                    if a.url.startswith(("http://", "https://")))
    if also:
        out += f'<div class="kabar-muted kabar-also">{html.escape(also)}{links}</div>'
    return out


_MARK_OPEN, _MARK_CLOSE = "\x02", "\x03"


def _paragraphs(text: str, mark: tuple[int, int] | None = None) -> str:
    """A passage as escaped HTML paragraphs: blank lines separate them, line breaks inside are
    spaces; the characters ``mark`` spans (a sentence, never across paragraphs) in ``<mark>``."""
    text = text.replace(_MARK_OPEN, " ").replace(_MARK_CLOSE, " ")
    if mark:
        a, b = mark
        text = text[:a] + _MARK_OPEN + text[a:b] + _MARK_CLOSE + text[b:]
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p).replace(
        _MARK_OPEN, '<mark class="kabar-support-mark">').replace(_MARK_CLOSE, "</mark>")


def sources_message(answer: Answer) -> dict[str, Any] | None:
    """A collapsed chat message under the answer listing its sources by article; None without sources."""
    if not answer.sources:
        return None
    cited, unsupported, supports = _cited(answer), _unsupported(answer), _supports(answer)
    lines = []
    for article in source_articles(answer.sources):
        c = article.chunk
        shown, link = _where(article.passages[0][1])
        where = f"[{md_escape(shown)}]({link})" if link else md_escape(shown)
        title = md_escape(c.title or "(untitled)")
        numbers = "".join(f"\\[{n}\\]" for n in article.numbers)
        head = f"**{numbers} ★ {title}**" if cited & set(article.numbers) else f"{numbers} {title}"
        lines.append(f"{head} — {where}")
        for n, hit in article.passages:
            note = " (cited, unconfirmed)" if n in unsupported else " ★" if n in cited else ""
            sentence = supports.get(n) if n in cited else None
            if sentence:
                lines.append(f"> **\\[{n}\\]** supports the answer: "
                             f"**{md_escape(' '.join(hit.chunk.text[sentence[0]:sentence[1]].split()))}**")
            lines.append(f"> **\\[{n}\\]**{note} {md_escape(' '.join(hit.chunk.text.split()))}")
    label = f"{SOURCES_TITLE}: " + (", ".join(f"[{n}]" for n in sorted(cited)) + " cited" if cited else "none cited")
    return {"role": "assistant", "content": "\n\n".join(lines), "metadata": {"title": label, "status": "done"}}


# -- documents and settings ---------------------------------------------------------------


def document_rows(docs: Iterable[DocumentInfo]) -> list[list[Any]]:
    """Rows of the documents table, in :data:`DOCUMENT_HEADERS` order."""
    return [[d.title, source_label(d.source), d.chunks, _when(d.ingested_at), d.doc_id] for d in docs]


def document_choices(docs: Iterable[DocumentInfo]) -> list[tuple[str, str]]:
    """(label, doc_id) pairs for the delete picker."""
    return [(f"{d.title or '(untitled)'} — {source_label(d.source)}", d.doc_id) for d in docs]


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else ""


def models_markdown(info: dict[str, Any], local_embeddings: bool, local_llm: bool) -> str:
    """What answers and what embeds, local or remote, and what is stored (a Markdown table)."""
    llm = str(info.get("llm", ""))
    llm = llm.removeprefix("local: ") if local_llm else llm
    rows = [
        ("LLM", f"{'local' if local_llm else 'remote'} — {_code(llm)}"),
        ("Embedding model", f"{'local (in-process)' if local_embeddings else 'remote'} — "
                            f"{_code(str(info.get('embedding_model', '')))}"),
        ("Store", f"{_code(str(info.get('store', '')))}, collection {_code(str(info.get('collection', '')))}"),
        ("Stored", f"{info.get('documents', 0)} documents, {info.get('chunks', 0)} chunks"),
    ]
    return "\n".join(f"- **{k}:** {v}" for k, v in rows)


def _code(text: str) -> str:
    """``text`` as a Markdown code span (shown literally)."""
    return "`" + text.replace("`", "'") + "`"


def timeline_html(events: Sequence[Any], done: Any = None, problem: str = "") -> str:
    """A timeline as it arrives (:class:`rag.timeline.TimelineEvent` items, oldest first), then
    its end (:class:`rag.timeline.Timeline`): date, outlets, the article's line, its number and link."""
    items = []
    for e in events:
        link = next((u for u in e.urls if u.startswith(("http://", "https://"))), "")
        title = html.escape(e.title or "(untitled)")
        if link:
            title = f'<a href="{html.escape(link)}" target="_blank" rel="noopener noreferrer">{title}</a>'
        items.append(f'<li class="kabar-event"><span class="kabar-event-date">{html.escape(e.day)}</span> · '
                     f'<span class="kabar-event-outlets">{html.escape(", ".join(source_label(o) for o in e.outlets))}'
                     f'</span><br>{html.escape(e.line)} <span class="kabar-num">[{e.number}]</span>'
                     f'<br><span class="kabar-muted">{title}</span></li>')
    body = f'<ol class="kabar-events">{"".join(items)}</ol>' if items else ""
    if problem:
        status = f'<p class="kabar-timeline-status">{ERROR_MARK} {html.escape(problem)}</p>'
    elif done is None:
        status = '<p class="kabar-muted kabar-timeline-status">Placing the articles in date order…</p>'
    elif not done.events:
        status = f'<p class="kabar-timeline-status">{html.escape(done.summary())}</p>'
    else:
        undated = f" · {done.undated} undated article(s) left out" if done.undated else ""
        status = (f'<p class="kabar-muted kabar-timeline-status">{html.escape(done.summary())}{undated}'
                  f" · {done.seconds:.1f}s</p>")
    return f'<div class="kabar-timeline">{body}{status}</div>'
