"""The client, what the server is, and errors a person can act on.

Works with the official client 8.x and 9.x: only APIs and arguments both majors have are used
(search bodies go in `body=`, so the 8.13 client can send a `retriever` it has no argument for).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import elasticsearch
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TlsError
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    UnsupportedProductError,
)

from retrieval.config import ElasticsearchSettings
from retrieval.index import IndexUnavailable

log = logging.getLogger(__name__)

CLIENT_VERSION = elasticsearch.__versionstr__
CLIENT_MAJOR = int(CLIENT_VERSION.split(".")[0])
# Licences under which self-managed clusters may run the rrf retriever (the subscriptions page lists
# RRF under Enterprise; a trial licence enables everything).
RRF_LICENCES = frozenset({"enterprise", "trial"})


@dataclass(frozen=True)
class ServerInfo:
    version: str
    flavor: str  # "default" or "serverless"
    cluster_name: str
    licence: str  # basic, trial, platinum, enterprise, serverless, or unknown

    @property
    def version_tuple(self) -> tuple[int, int]:
        m = re.match(r"(\d+)\.(\d+)", self.version)
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

    @property
    def serverless(self) -> bool:
        return self.flavor == "serverless"

    @property
    def version_known(self) -> bool:
        """False when `GET /` was not readable: features that depend on the version stay off."""
        return self.serverless or self.version_tuple != (0, 0)

    def at_least(self, major: int, minor: int) -> bool:
        """Serverless runs ahead of every stack release; its `version.number` means nothing."""
        return self.serverless or self.version_tuple >= (major, minor)

    @property
    def native_rrf_allowed(self) -> bool:
        if self.serverless:
            return True
        return self.at_least(8, 14) and self.licence in RRF_LICENCES

    @property
    def rrf_window_param(self) -> str:
        """The rrf retriever's window: `window_size` in 8.14, `rank_window_size` from 8.15 on."""
        return "rank_window_size" if self.at_least(8, 15) else "window_size"

    @property
    def vector_rescore_supported(self) -> bool:
        """`knn.rescore_vector` (rescore quantized candidates with the float vectors): 8.18+, 9.x."""
        return self.at_least(8, 18)

    @property
    def vectors_excluded_from_source(self) -> bool:
        """9.2+ leaves dense vectors out of `_source` unless a search asks for them."""
        return self.at_least(9, 2)

    @property
    def describe(self) -> str:
        return "Elasticsearch Serverless" if self.serverless else f"Elasticsearch {self.version}"


def make_client(settings: ElasticsearchSettings) -> Elasticsearch:
    """A client from settings (indexing timeouts); it opens no connection until the first request.

    Raises `IndexUnavailable` for settings the transport would refuse with a bare `ValueError`.
    """
    if settings.ca_certs:
        if settings.url and not settings.url.startswith("https://"):
            raise IndexUnavailable(
                f"ELASTICSEARCH_CA_CERTS (retrieval.elasticsearch.ca_certs) is set to {settings.ca_certs}, but "
                f"ELASTICSEARCH_URL is {settings.url}: a CA certificate only applies to https://. Use "
                f"https://{settings.url.removeprefix('http://')} if the cluster has TLS (a default 8.x/9.x "
                "install does), or unset ELASTICSEARCH_CA_CERTS for a cluster without TLS."
            )
        if not os.path.exists(settings.ca_certs):
            raise IndexUnavailable(
                f"ELASTICSEARCH_CA_CERTS (retrieval.elasticsearch.ca_certs) points at {settings.ca_certs}, which does "
                "not exist. Copy the cluster's CA certificate there (config/certs/http_ca.crt on the node)."
            )
    kwargs: dict[str, Any] = {
        "request_timeout": settings.request_timeout,
        "max_retries": settings.max_retries,
        "retry_on_timeout": True,
        "verify_certs": settings.verify_certs,
    }
    if settings.api_key is not None:
        key = settings.api_key.get_secret_value()
        # The encoded key (what Kibana shows) is base64 and has no ':'; "id:secret" is the raw pair.
        kwargs["api_key"] = tuple(key.split(":", 1)) if ":" in key else key
    elif settings.username:
        kwargs["basic_auth"] = (settings.username, settings.password.get_secret_value() if settings.password else "")
    if settings.ca_certs:
        kwargs["ca_certs"] = settings.ca_certs
    try:
        return Elasticsearch(settings.url, **kwargs)
    except ValueError as e:  # the transport checks URL and TLS options when the client is built
        raise IndexUnavailable(
            f"The Elasticsearch client refused the connection settings for {settings.url} ({e}). "
            "Check ELASTICSEARCH_URL, ELASTICSEARCH_CA_CERTS and retrieval.elasticsearch.verify_certs."
        ) from None


def search_options(client: Elasticsearch, settings: ElasticsearchSettings) -> Elasticsearch:
    """The client for requests someone waits on (a Slack question, `orgbot status`): short timeout,
    a timed-out request is not sent again, one retry for a refused connection or a 502/503/504."""
    return client.options(request_timeout=settings.search_timeout, max_retries=settings.search_max_retries,
                          retry_on_timeout=False)


def submit_options(client: Elasticsearch) -> Elasticsearch:
    """The client for starting server-side tasks (reindex, delete_by_query with
    `wait_for_completion=false`): a submission that timed out may have started the task, so it is
    never sent twice."""
    return client.options(retry_on_timeout=False)


def read_server(client: Elasticsearch) -> ServerInfo:
    try:
        info = dict(client.info())
    except AuthorizationException as e:  # a key limited to the orgbot indices may not read GET /
        log.info("server info not readable", extra={"status": e.status_code})
        info = {}
    version = info.get("version") or {}
    flavor = version.get("build_flavor") or "default"
    licence = "serverless" if flavor == "serverless" else "unknown"
    if flavor != "serverless":
        try:
            lic = client.license.get().get("license") or {}
            status = lic.get("status", "active")
            licence = lic.get("type", "unknown") if status == "active" else f"{lic.get('type')} ({status})"
        except ApiError as e:  # an API key without `monitor` may not read it; fusion stays client-side
            log.info("licence not readable", extra={"status": e.status_code})
    return ServerInfo(
        version=str(version.get("number", "unknown")), flavor=flavor,
        cluster_name=str(info.get("cluster_name", "")), licence=licence,
    )


def _where(settings: ElasticsearchSettings) -> str:
    return f"Elasticsearch at {settings.url}"


def unavailable(settings: ElasticsearchSettings, e: BaseException) -> IndexUnavailable | None:
    """The `IndexUnavailable` for a client error that means "cannot use the cluster", else None."""
    where = _where(settings)
    if isinstance(e, UnsupportedProductError):
        return IndexUnavailable(
            f"The server at {settings.url} is not Elasticsearch (no X-Elastic-Product header). "
            "orgbot needs Elasticsearch 8.x or 9.x; check retrieval.elasticsearch.url / ELASTICSEARCH_URL."
        )
    if isinstance(e, (TransportConnectionError, ConnectionTimeout)):  # refused, DNS, TLS, timeout: no answer
        reason = _transport_reason(e)
        if isinstance(e, ConnectionTimeout):
            return IndexUnavailable(
                f"{where} did not answer in time ({reason}). Check `GET _cluster/health` and the node logs; "
                "retrieval.elasticsearch.search_timeout / request_timeout set how long orgbot waits."
            )
        hint = (
            f"Check that the cluster is running (`curl {settings.url}`), that ELASTICSEARCH_URL "
            "(or retrieval.elasticsearch.url) is right"
        )
        if isinstance(e, TlsError) or "certificate" in reason or "TLS" in reason:
            hint = ("The TLS handshake failed: point ELASTICSEARCH_CA_CERTS (retrieval.elasticsearch.ca_certs) at "
                    "the cluster's CA certificate (http_ca.crt), or use http:// if the cluster has no TLS")
        elif settings.url and settings.url.startswith("http://"):
            hint += ", and whether the cluster expects https://"
        return IndexUnavailable(f"{where} is not reachable ({reason}). {hint}.")
    if isinstance(e, AuthenticationException):
        return IndexUnavailable(
            f"{where} rejected the credentials (401). Set ELASTICSEARCH_API_KEY (an encoded API key) or "
            "retrieval.elasticsearch.username / password."
        )
    if isinstance(e, AuthorizationException) and "license" not in str(e.body).lower():
        return IndexUnavailable(
            f"{where} refused the request (403: {_api_reason(e)}). The API key needs `monitor` on the cluster and "
            f"`all` on the indices {settings.index_alias}*."
        )
    if isinstance(e, ApiError):
        if e.status_code == 410 or _api_type(e) == "api_not_available_exception":
            return IndexUnavailable(
                f"{where} does not offer an API orgbot called ({_api_reason(e)}). If this is Elasticsearch "
                "Serverless, please report it: orgbot avoids the APIs Serverless lacks."
            )
        if _api_type(e) == "media_type_header_exception":
            return IndexUnavailable(
                f"{where} is an older major than the Python client elasticsearch {CLIENT_VERSION} "
                f"({_api_reason(e)}). Install the client major that matches the server, "
                f"e.g. for an 8.x server: pip install 'elasticsearch>=8,<9'."
            )
        if e.status_code in (502, 503, 504):
            return IndexUnavailable(
                f"{where} answered {e.status_code} ({_api_reason(e)}): the cluster is not ready. "
                "Check `GET _cluster/health` and the node logs."
            )
    return None


@contextmanager
def translate_errors(settings: ElasticsearchSettings, prefix: str = "") -> Iterator[None]:
    """Turn "the cluster is down / refuses us" into `IndexUnavailable`; other errors pass through.
    `prefix` starts the message (e.g. "Search is unavailable: ")."""
    try:
        yield
    except (TransportConnectionError, ConnectionTimeout, ApiError) as e:
        mapped = unavailable(settings, e)
        if mapped is None:
            raise
        raise IndexUnavailable(f"{prefix}{mapped}") from None
    except IndexUnavailable as e:
        if not prefix or str(e).startswith(prefix):
            raise
        raise IndexUnavailable(f"{prefix}{e}") from None


def _transport_reason(e: Exception) -> str:
    text = str(getattr(e, "message", "") or e)
    for pattern, reason in (
        (r"Connection refused|ECONNREFUSED", "connection refused"),
        (r"Name or service not known|nodename nor servname|getaddrinfo failed|Temporary failure in name",
         "host name not found"),
        (r"timed out|Timeout", "timed out"),
        (r"CERTIFICATE_VERIFY_FAILED|certificate verify failed", "certificate verify failed"),
        (r"WRONG_VERSION_NUMBER|wrong version number", "TLS to a server that speaks plain HTTP"),
    ):
        if re.search(pattern, text):
            return reason
    return f"{type(e).__name__}: {text[:200]}"


def _api_type(e: ApiError) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    err = body.get("error")
    return err.get("type", "") if isinstance(err, dict) else ""


def _api_reason(e: ApiError) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    err = body.get("error")
    if isinstance(err, dict):
        caused = err.get("caused_by") or {}
        return str(caused.get("reason") or err.get("reason") or err.get("type"))
    return str(err or e.message)


def api_error_text(e: ApiError) -> str:
    return f"{e.status_code} {_api_type(e) or 'error'}: {_api_reason(e)}"
