"""Chunking, embedding, the document index and hybrid search."""
