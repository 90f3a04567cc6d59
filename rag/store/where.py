"""Chroma's ``where`` filters, as :meth:`rag.types.Filters.where` writes them, outside Chroma.

:func:`where_matches` evaluates a filter on one chunk's metadata in Python (for rows the
lexical index found); :func:`where_sql` translates it into a SQL condition over the lexical
index's ``chunks`` table (sources, documents, a publication date range, ``$and``/``$or``).
Both answer None for syntax they do not cover, and the caller lets Chroma decide.
Leaves running the searches to :mod:`rag.store.prefilter` and :mod:`rag.store.lexical`.
"""

from __future__ import annotations

from typing import Any

#: Filterable metadata -> its SQL expression in the lexical index (each has an index there)
#: and the type of its values (SQLite would compare a string with a number; Chroma matches nothing).
COLUMNS: dict[str, tuple[str, type]] = {
    "doc_id": ("doc_id", str),
    "source": ("json_extract(meta, '$.source')", str),
    "published_day": ("json_extract(meta, '$.published_day')", int),
}
_OPS = {"$eq": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}

def where_sql(where: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """A SQL condition over the lexical index's ``chunks`` table equal to ``where``, with its
    parameters; None for syntax or fields it does not cover."""
    if not isinstance(where, dict) or len(where) != 1:
        return None
    key, cond = next(iter(where.items()))
    if key in ("$and", "$or"):
        if not isinstance(cond, list) or len(cond) < 2:
            return None
        parts = [where_sql(c) for c in cond]
        if any(p is None for p in parts):
            return None
        joiner = " AND " if key == "$and" else " OR "
        return "(" + joiner.join(p[0] for p in parts if p) + ")", [v for p in parts if p for v in p[1]]
    if key not in COLUMNS:
        return None
    column, kind = COLUMNS[key]
    if not isinstance(cond, dict):
        cond = {"$eq": cond}
    if len(cond) != 1:
        return None
    op, value = next(iter(cond.items()))
    values = value if op == "$in" and isinstance(value, list) else [value]
    if not values or not all(type(v) is kind for v in values):
        return None  # an empty list or another type: Chroma decides (an error, or nothing matches)
    if op == "$in":
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)
    if op not in _OPS:
        return None
    return f"{column} {_OPS[op]} ?", [value]


_COMPARE = {
    "$eq": lambda a, b: a == b, "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b, "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b, "$lte": lambda a, b: a is not None and a <= b,
    "$in": lambda a, b: a in b, "$nin": lambda a, b: a not in b,
}


def where_matches(where: dict[str, Any], meta: dict[str, Any]) -> bool | None:
    """Whether metadata passes a Chroma ``where`` filter; None for syntax not handled here.

    Covers what :meth:`~rag.types.Filters.where` writes and a little more: ``$and``,
    ``$or``, a bare value (equality) and the comparison operators above.
    """
    if len(where) != 1:
        return None  # Chroma wants one key per dict (or an error): let it say so
    results: list[bool | None] = []
    for key, cond in where.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or len(cond) < 2:
                return None  # Chroma wants two or more
            parts = [where_matches(c, meta) for c in cond]
            if any(p is None for p in parts):
                return None
            results.append(all(parts) if key == "$and" else any(parts))  # type: ignore[arg-type]
        elif key.startswith("$"):
            return None
        elif isinstance(cond, dict):
            if len(cond) != 1 or next(iter(cond)) not in _COMPARE:
                return None
            op, value = next(iter(cond.items()))
            if op in ("$in", "$nin") and not value:
                return None  # Chroma rejects an empty list
            try:
                results.append(bool(_COMPARE[op](meta.get(key), value)))
            except TypeError:  # e.g. a string compared with a number: Chroma matches nothing
                results.append(False)
        else:
            results.append(meta.get(key) == cond)
    return all(results)  # type: ignore[arg-type]
