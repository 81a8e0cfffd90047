"""Google Cloud Storage access, checked once before a run works on gs://.

The clients that do the work (gcsfs, TensorFlow's GCS file system, Beam's GCS IO) retry what
fails for roughly half a minute and then print their own tracebacks; a run without
credentials, with a misspelt bucket or without permission would stop only after that, with
a message about sockets. `check_locations` asks each gs:// location once (one listing, no
retries, a 10 s timeout) and turns what stops the run into one line naming the location,
the bucket and the fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

CREDENTIALS_HELP = (
    "set RETRAIN_GCS_BLOCK to a retrain-gcs block holding a service-account key (Prefect UI: "
    "Blocks), or GOOGLE_APPLICATION_CREDENTIALS to a key file, or run `gcloud auth "
    "application-default login` (Application Default Credentials)")
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)


class StorageAccessError(ValueError):
    """A gs:// location of the run cannot be used; the message names it, why and the fix."""


@dataclass(frozen=True)
class Location:
    """One gs:// location a run uses: its config field, URI, and whether objects must
    already be there (input data) or only the bucket (roots written by the run)."""

    label: str
    uri: str
    must_hold_objects: bool = False

    @property
    def bucket(self) -> str:
        return self.uri.removeprefix("gs://").split("/", 1)[0]

    @property
    def prefix(self) -> str | None:
        path = self.uri.removeprefix("gs://").partition("/")[2].strip("/")
        return f"{path}/" if path else None


def _client(locations: list[Location]):
    """A storage client with this process's credentials; anonymous on an emulator without
    a key. No credentials at all is a StorageAccessError naming the buckets."""
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST") and not os.environ.get(
            "GOOGLE_APPLICATION_CREDENTIALS"):
        return storage.Client.create_anonymous_client(), None
    import google.auth
    from google.auth import exceptions as auth_errors

    try:
        credentials, project = google.auth.default(scopes=list(SCOPES))
    except auth_errors.DefaultCredentialsError:
        buckets = ", ".join(sorted({f"gs://{loc.bucket}" for loc in locations}))
        raise StorageAccessError(
            f"no Google Cloud credentials to read {buckets}: {CREDENTIALS_HELP}") from None
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or project
    identity = getattr(credentials, "service_account_email", None)
    return storage.Client(credentials=credentials, project=project), identity


def _first_line(exc: BaseException) -> str:
    """The service's own words: api_core prefixes them with the request (`GET <url>: `)."""
    message = (getattr(exc, "message", None) or str(exc)).strip()
    message = re.sub(r"^[A-Z]+ \S+: ", "", message)
    return message.splitlines()[0] if message else type(exc).__name__


def check_locations(locations: Mapping[str, str | None], inputs: tuple[str, ...] = (),
                    timeout: float = 10.0) -> None:
    """Ask each gs:// location (config field → URI; others are skipped) once: its bucket
    exists, the credentials may list it, and for `inputs` objects are there.

    Raises StorageAccessError with one line; nothing is retried (a missing bucket or a
    refused permission answers the same again).
    """
    wanted = [Location(label, uri, label in inputs) for label, uri in locations.items()
              if uri and uri.startswith("gs://")]
    if not wanted:
        return
    from google.api_core import exceptions as api_errors
    from google.auth import exceptions as auth_errors

    client, identity = _client(wanted)
    who = identity or "these credentials"
    seen: set[tuple[str, str | None]] = set()
    for location in wanted:
        if (location.bucket, location.prefix) in seen:
            continue
        seen.add((location.bucket, location.prefix))
        where = f"{location.label} {location.uri}"
        try:
            blobs = client.list_blobs(location.bucket, prefix=location.prefix, max_results=1,
                                      timeout=timeout, retry=None)
            found = next(iter(blobs), None)
        except api_errors.NotFound:
            raise StorageAccessError(
                f"{where}: bucket gs://{location.bucket} does not exist") from None
        except api_errors.Forbidden as exc:
            raise StorageAccessError(
                f"{where}: {who} may not list gs://{location.bucket} ({_first_line(exc)}); "
                "grant it roles/storage.objectAdmin on the bucket, or use other "
                f"credentials: {CREDENTIALS_HELP}") from None
        except (api_errors.Unauthorized, auth_errors.RefreshError) as exc:
            raise StorageAccessError(
                f"{where}: the credentials were refused ({_first_line(exc)}): "
                f"{CREDENTIALS_HELP}") from None
        except (api_errors.GoogleAPICallError, auth_errors.TransportError, OSError) as exc:
            raise StorageAccessError(
                f"{where}: Google Cloud Storage did not answer ({_first_line(exc)})") from None
        if location.must_hold_objects and found is None:
            raise StorageAccessError(f"{where}: no objects under it")
