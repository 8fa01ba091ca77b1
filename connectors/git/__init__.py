"""Git wiki connector: a repository's Markdown/HTML/PDF/DOCX files, changes from `git diff`."""
from connectors.git.connector import GitConnector

__all__ = ["GitConnector"]
