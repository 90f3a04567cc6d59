"""Search: from a question to the ranked chunks and the token budget they may fill.

:func:`hybrid_search` (:mod:`~rag.search.retrieval`) gathers dense and BM25 candidates from
the store and ranks them by the signals :mod:`~rag.search.fusion` fuses; :func:`source_budget`
(:mod:`~rag.search.budget`) decides how much of the prompt a question gets (a single fact a
few passages, a question across articles the whole budget).

Leaves storing and filtering to :mod:`rag.store`, and what the model reads of the ranked
chunks (grouping, the prompt) to :mod:`rag.answer`.
"""

from rag.search.budget import source_budget
from rag.search.retrieval import hybrid_search, mentioned_publications

__all__ = ["hybrid_search", "mentioned_publications", "source_budget"]
