"""Ingest: load articles from files, clean, chunk with tiktoken, embed and store in Chroma.

    from ingest import ingest
    report = ingest(["articles/"])        # settings from the environment
    print(report.summary())
"""

from ingest.pipeline import IngestReport, ingest, ingest_documents

__all__ = ["IngestReport", "ingest", "ingest_documents"]
