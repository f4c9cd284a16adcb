"""``manifest.json``: what an export folder holds, and the check that a file is the one exported.

The exporter writes it last (so its presence means a complete export); the
runtime (``Detector.load(..., manifest=)``) and ``shipcam verify`` refuse a
file whose sha256 differs from its entry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from shipcam.errors import ModelFileError

__all__ = ["MANIFEST", "sha256_file", "manifest_entry", "check_against_manifest"]

MANIFEST = "manifest.json"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_entry(manifest: str | Path, name: str) -> dict | None:
    """The entry for file ``name`` in ``manifest``, or None when it is not listed."""
    manifest = Path(manifest)
    try:
        files = json.loads(manifest.read_text())["files"]
        return next((e for e in files if e["file"] == name), None)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{manifest}: not a shipcam manifest ({type(e).__name__}: {e})") from None


def check_against_manifest(path: str | Path, manifest: str | Path, required: bool = True) -> bool:
    """Raise unless ``path``'s sha256 matches its entry; False when unlisted and not ``required``."""
    path, manifest = Path(path), Path(manifest)
    entry = manifest_entry(manifest, path.name)
    if entry is None:
        if required:
            raise ModelFileError(f"{path.name} is not listed in {manifest}")
        return False
    digest = sha256_file(path)
    if digest != entry.get("sha256"):
        raise ModelFileError(
            f"{path}: sha256 does not match {manifest} (file {digest[:12]}..., manifest "
            f"{str(entry.get('sha256'))[:12]}...); the file changed since export"
        )
    return True
