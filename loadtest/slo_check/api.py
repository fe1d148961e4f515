"""The one way the gate calls an HTTP API: a transport fault, a status other than 2xx or a body that is
not JSON is NotMeasured, so a broken server can never read as an empty measurement.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from loadtest.slo_check import NotMeasured

TIMEOUT = 10.0


def call(
    method: str, url: str, *, who: str, session: requests.Session | None = None, timeout: float = TIMEOUT, **kwargs: Any
) -> requests.Response:
    """``method url`` answered with 2xx; ``who`` names the server in the message otherwise."""
    parts = urlsplit(url)
    path = parts.path
    try:
        response = (session or requests).request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise NotMeasured(
            f"{who} at {parts.scheme}://{parts.netloc} did not answer {method} {path} ({type(exc).__name__})"
        ) from None
    if not response.ok:
        raise NotMeasured(f"{who} answered HTTP {response.status_code} to {method} {path}: {response.text[:200]}")
    return response


def get_json(url: str, *, who: str, session: requests.Session | None = None, **kwargs: Any) -> Any:
    """The JSON body of ``GET url``."""
    response = call("GET", url, who=who, session=session, **kwargs)
    try:
        return response.json()
    except ValueError:
        raise NotMeasured(f"{who} answered GET {urlsplit(url).path} with a body that is not JSON") from None
