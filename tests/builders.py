"""Builders for test data: images, settings, hubs and registered teams."""

import io
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

ADMIN_TOKEN = "ra_test_admin_token"
# The tests' recognizers listen on this machine, so their hubs allow loopback (SPEC §9).
LOOPBACK_ALLOWED = "127.0.0.0/8,::1/128"


def png_bytes(
    width: int = 32, height: int = 24, color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes(
    width: int = 32, height: int = 24, color: tuple[int, int, int] = (30, 200, 30)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="JPEG")
    return out.getvalue()


def hub_settings(database_url: str, data_dir: Path, **overrides: object):  # type: ignore[no-untyped-def]
    from gateway.config import Settings

    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "admin_token": ADMIN_TOKEN,
        "request_timeout_s": 2.0,
        "retry_backoff_s": 0.01,
        "retry_backoff_max_s": 0.05,
        "endpoint_allow": LOOPBACK_ALLOWED,
        # The in-flight limit that follows the event loop's lateness (gateway.runs.engine.timing)
        # is tested on its own; on a loaded test machine it would change every test's
        # concurrency.
        "timing_bound_ms": 0.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Team:
    provider_guid: str
    api_key: str
    service_guid: str
    signing_secret: str


def register_team(
    client: httpx.Client, endpoints: list[str], *, name: str | None = None, **service: object
) -> Team:
    """Create a provider and one service through the API, as an organizer would."""
    name = name or f"team-{uuid.uuid4().hex[:6]}"
    r = client.post("/api/v1/providers", json={"name": name}, headers=admin_headers())
    assert r.status_code == 201, r.text
    provider = r.json()
    body = {"provider_guid": provider["guid"], "name": f"{name}-svc", "endpoints": endpoints}
    body.update(service)
    r = client.post("/api/v1/services", json=body, headers=admin_headers())
    assert r.status_code == 201, r.text
    svc = r.json()
    return Team(provider["guid"], provider["api_key"], svc["guid"], svc["signing_secret"])


# Offline prediction files (SPEC §13), as the bytes a team would upload.


def text_file(lines: list[str]) -> io.BytesIO:
    """A text prediction file of `lines`, each ended by a newline."""
    return io.BytesIO("".join(f"{line}\n" for line in lines).encode("utf-8"))


def matching_file(rows: list[tuple[str, str, float | str]]) -> io.BytesIO:
    """An `isc-matching` file: the header, then `query_id,reference_id,score` rows."""
    return text_file(["query_id,reference_id,score", *(f"{q},{r},{s}" for q, r, s in rows)])


def descriptors_file(arrays: dict[str, object], *, container: str = "npz") -> io.BytesIO:
    """An `isc-descriptors` file holding `arrays` (names to numpy arrays or lists), as a
    numpy `.npz` archive or an HDF5 file (`container="hdf5"`)."""
    import numpy as np

    buffer = io.BytesIO()
    if container == "npz":
        np.savez(buffer, **{name: np.asarray(value) for name, value in arrays.items()})
    else:
        import h5py

        with h5py.File(buffer, "w") as h5:
            for name, value in arrays.items():
                array = np.asarray(value)
                if array.dtype.kind == "U":  # ids as fixed-length (UTF-8) bytes
                    array = np.char.encode(array, "utf-8")
                h5.create_dataset(name, data=array)
    buffer.seek(0)
    return buffer
