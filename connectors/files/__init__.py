from connectors.files.connector import FilesConnector

__all__ = ["FilesConnector"]
