"""Connectors pull documents from sources (folders, wikis) as plain `SourceDocument`s.

They never touch the index: `retrieval/` consumes what they yield.
"""
