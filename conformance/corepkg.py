"""The full FHIR R4 core package (``hl7.fhir.r4.examples@4.0.1``: every R4 definition plus
the official examples), fetched once into a git-ignored cache directory.

    python -m conformance.corepkg            # what `make setup` runs; idempotent

The validator itself does not need it: it runs on the compact subset vendored in
``conformance/core/`` (see ``conformance/build_core.py``). The full package is what the
subset is built from, and what the official-examples test validates. The tarball comes
from the npm registry (FHIR packages are npm packages); the download is checked against
the registry's published sha512 before it is unpacked.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import sys
import tarfile
from pathlib import Path

import httpx

NAME, VERSION = "hl7.fhir.r4.examples", "4.0.1"
REGISTRY = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GATEWAY_FHIR_CACHE", ROOT / ".cache" / "fhir"))


def package_dir(cache: Path = CACHE) -> Path:
    """Where the unpacked package lives (``…/package/*.json``)."""
    return cache / f"{NAME}-{VERSION}" / "package"


def fetch(cache: Path = CACHE, timeout: float = 120.0) -> Path:
    """The unpacked package, downloading it first when it is not there yet."""
    target = package_dir(cache)
    if (target / "package.json").is_file():
        return target
    meta = httpx.get(f"{REGISTRY}/{NAME}/{VERSION}", timeout=timeout,
                     follow_redirects=True).raise_for_status().json()
    dist = meta["dist"]
    data = httpx.get(dist["tarball"], timeout=timeout,
                     follow_redirects=True).raise_for_status().content
    integrity = dist.get("integrity", "")
    if integrity.startswith("sha512-"):
        digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
        if digest != integrity.removeprefix("sha512-"):
            raise RuntimeError(f"{NAME}@{VERSION}: the download does not match its sha512")
    staging = target.parent.with_name(target.parent.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        _extract(tar, staging)
    shutil.rmtree(target.parent, ignore_errors=True)  # a half-unpacked earlier attempt
    staging.rename(target.parent)  # package.json appears last: the package is complete
    return target


def _extract(tar: tarfile.TarFile, into: Path) -> None:
    """Unpack regular files and folders only, each inside ``into``: what tarfile's "data"
    filter does, by hand, because Python 3.11 before 3.11.4 (Debian 12's 3.11.2 among
    them) has no ``filter`` argument."""
    root = into.resolve()
    for member in tar.getmembers():
        path = (root / member.name).resolve()
        if not path.is_relative_to(root) or not (member.isfile() or member.isdir()):
            raise RuntimeError(f"{NAME}@{VERSION}: refusing to unpack {member.name!r}")
        if member.isdir():
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None  # a regular file always has content
        with source, open(path, "wb") as out:
            shutil.copyfileobj(source, out)


if __name__ == "__main__":
    try:
        print(fetch())
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        print(f"could not fetch {NAME}@{VERSION}: {exc}", file=sys.stderr)
        sys.exit(1)
