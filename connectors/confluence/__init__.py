"""Confluence connector: Cloud REST v2 and Data Center REST v1."""
from connectors.confluence.connector import ConfluenceConnector

__all__ = ["ConfluenceConnector"]
