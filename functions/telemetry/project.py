"""The Google Cloud project that Cloud Logging's trace field names, found once per process.

From GOOGLE_CLOUD_PROJECT when set; else, on Google Cloud only (K_SERVICE: Cloud Run and
Cloud Functions; AIP_*: Vertex AI), from the metadata server, in a thread of its own so
neither the model load nor a request waits for it. Elsewhere (Lambda, a laptop) nothing is
asked and log lines carry the bare trace ID. ``discover`` runs after the fork (the holder's
load thread), so the answer is never read by a process that does not serve.
"""

from __future__ import annotations

import logging
import threading

from functions.config.settings import Settings
from functions.telemetry.context import Fields

log = logging.getLogger(__name__)
PATH = "/computeMetadata/v1/project/project-id"
TIMEOUT_SECONDS = 2.0
_started = False


def on_google_cloud(settings: Settings) -> bool:
    return bool(settings.k_service or settings.aip_predict_route or settings.aip_storage_uri)


def discover(settings: Settings) -> None:
    """Set ``Fields.project`` (at most one metadata request per process)."""
    global _started
    if settings.google_cloud_project:
        Fields.project = settings.google_cloud_project
        return
    if _started or Fields.project or not on_google_cloud(settings):
        return
    _started = True
    threading.Thread(target=_ask, args=(settings.gce_metadata_host,), name="project-id",
                     daemon=True).start()


def _ask(host: str) -> None:
    import http.client  # plain HTTP to the metadata server: no TLS, no SDK

    try:
        conn = http.client.HTTPConnection(host, timeout=TIMEOUT_SECONDS)
        try:
            conn.request("GET", PATH, headers={"Metadata-Flavor": "Google"})
            resp = conn.getresponse()
            body = resp.read().decode().strip()
        finally:
            conn.close()
    except (OSError, http.client.HTTPException, UnicodeDecodeError) as exc:
        log.warning("project ID not read from the metadata server %s (%s): log lines carry "
                    "the bare trace ID; set GOOGLE_CLOUD_PROJECT", host, exc)
        return
    if resp.status == 200 and body:
        Fields.project = body
    else:
        log.warning("metadata server %s answered %s for the project ID; set "
                    "GOOGLE_CLOUD_PROJECT", host, resp.status)

