"""MediaWiki connector (Action API): pages, changes, deletions and moves."""
from connectors.mediawiki.connector import MediaWikiConnector

__all__ = ["MediaWikiConnector"]
