"""One polite HTTP client for the web connectors: retries with backoff on dropped connections,
429 and 5xx (honouring Retry-After), an optional pause between requests, and errors in words.
"""

from __future__ import annotations

import logging
import threading
import time
from email.utils import parsedate_to_datetime

import httpx
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt, wait_exponential

from connectors.base import SourceUnavailable

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}


class RetryableStatus(Exception):
    def __init__(self, response: httpx.Response, retry_after: float | None):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (either form the RFC allows)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _retryable(e: BaseException) -> bool:
    # a dropped connection or a timeout may pass; a URL we cannot speak to will not
    return isinstance(e, RetryableStatus) or (isinstance(e, httpx.TransportError)
                                              and not isinstance(e, httpx.UnsupportedProtocol))


class PoliteClient:
    """`httpx.Client` with retries. `max_wait_s` caps one Retry-After so a sync never hangs for hours."""

    def __init__(self, *, timeout_s: float = 30.0, attempts: int = 5, backoff_s: float = 1.0,
                 max_wait_s: float = 120.0, interval_s: float = 0.0, headers: dict[str, str] | None = None,
                 auth: httpx.Auth | tuple[str, str] | None = None, user_agent: str = "orgbot (wiki sync)"):
        self.client = httpx.Client(timeout=timeout_s, follow_redirects=True, auth=auth,
                                   headers={"User-Agent": user_agent, **(headers or {})})
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.interval_s = interval_s
        self.requests = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def _wait(self, state: RetryCallState) -> float:
        e = state.outcome.exception() if state.outcome else None
        if isinstance(e, RetryableStatus) and e.retry_after is not None:
            return min(e.retry_after, self.max_wait_s)
        return wait_exponential(multiplier=self.backoff_s, max=self.max_wait_s)(state)

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        """The response of the last attempt (4xx other than 429 are returned, not retried). Raises
        `SourceUnavailable` when the server cannot be reached or keeps failing."""

        @retry(retry=retry_if_exception(_retryable), stop=stop_after_attempt(self.attempts), wait=self._wait,
               reraise=True)
        def attempt() -> httpx.Response:
            with self._lock:
                pause = self._last + self.interval_s - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                self._last = time.monotonic()
            self.requests += 1
            r = self.client.request(method, url, **kwargs)
            if r.status_code in RETRY_STATUS:
                wait = retry_after_seconds(r.headers.get("Retry-After"))
                log.info("retrying", extra={"url": url.split("?")[0], "status": r.status_code, "wait_s": wait})
                raise RetryableStatus(r, wait)
            return r

        try:
            return attempt()
        except RetryableStatus as e:
            hint = " (rate limited: lower the request rate with request_interval_s)" \
                if e.response.status_code == 429 else ""
            raise SourceUnavailable(f"{_where(url)} answered HTTP {e.response.status_code} "
                                    f"{self.attempts} times{hint}") from e
        except httpx.InvalidURL as e:
            raise SourceUnavailable(f"{url.split('?')[0]} is not a valid URL ({e}); fix the source's url") from e
        except httpx.TransportError as e:
            raise SourceUnavailable(f"cannot reach {_where(url)} ({type(e).__name__}: {e or 'no answer'}); check the "
                                    "URL and that the server is up") from e

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self.client.close()


def _where(url: str) -> str:
    u = httpx.URL(url)
    return f"{u.scheme}://{u.host}{':' + str(u.port) if u.port else ''}{u.path}"
