"""The models Kabar runs or reaches: chat LLMs and embedders, local or remote.

:class:`OpenAIChat` (:mod:`~rag.models.llm`) talks to any OpenAI-compatible chat server;
:mod:`~rag.models.local_llm` starts and stops the local llama.cpp server
(:mod:`~rag.models.llm_child` is its process) built for this CPU family
(:mod:`~rag.models.cpu`); :func:`make_embedder` (:mod:`~rag.models.embeddings`) gives the
in-process multilingual-e5-small (:mod:`~rag.models.e5`, numpy) or a remote
``/v1/embeddings``; :mod:`~rag.models.retry` is the retry policy both clients share.

Importing this package starts nothing and loads no weights (numpy and the local server's
module are imported where they are used). Leaves what to ask the models to :mod:`rag.answer`.
"""

from rag.models.embeddings import Embedder, make_embedder
from rag.models.llm import Message, OpenAIChat

__all__ = ["Embedder", "Message", "OpenAIChat", "make_embedder"]
