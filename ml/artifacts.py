"""The one artifact format every model uses: a joblib payload beside a JSON manifest.

The manifest carries the model kind, a hash of its configuration and the code version. ``load``
refuses an artifact whose kind, configuration hash or code version does not match what the caller
expects, or whose payload is not the file the manifest names (sha256), so a model trained by other
code or with other settings is never scored silently.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib

from core.clock import utcnow
from core.errors import Conflict, NotFound

MANIFEST = "manifest.json"
PAYLOAD = "model.joblib"
# Bump when a change to ml/ makes old artifacts unreadable or their predictions different.
CODE_VERSION = "ml-1"


def config_hash(config: Any) -> str:
    """A stable sha256 of a configuration (a dataclass or anything JSON-serialisable)."""
    data = asdict(config) if is_dataclass(config) and not isinstance(config, type) else config
    canonical = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Manifest:
    kind: str
    config_hash: str
    code_version: str
    payload_sha256: str
    created_at: datetime
    metadata: dict[str, Any]


def save(directory: Path, kind: str, config: Any, payload: Any, metadata: dict[str, Any] | None = None) -> Manifest:
    """Write ``payload`` and its manifest into ``directory`` (created); returns the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(payload, directory / PAYLOAD)
    manifest = Manifest(
        kind=kind,
        config_hash=config_hash(config),
        code_version=CODE_VERSION,
        payload_sha256=_sha256(directory / PAYLOAD),
        created_at=utcnow(),
        metadata=metadata or {},
    )
    (directory / MANIFEST).write_text(json.dumps(asdict(manifest), default=str, indent=2, sort_keys=True))
    return manifest


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    if not path.is_file():
        raise NotFound(f"no model artifact in {directory} (missing {MANIFEST})")
    data = json.loads(path.read_text())
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    return Manifest(**data)


def load(directory: Path, kind: str, expected_config_hash: str | None = None) -> tuple[Any, Manifest]:
    """The payload and manifest, after checking kind, code version, configuration hash and checksum."""
    manifest = read_manifest(directory)
    problems = []
    if manifest.kind != kind:
        problems.append(f"it is a {manifest.kind!r} model, not {kind!r}")
    if manifest.code_version != CODE_VERSION:
        problems.append(f"it was made by code version {manifest.code_version}, this is {CODE_VERSION}: retrain it")
    if expected_config_hash is not None and manifest.config_hash != expected_config_hash:
        problems.append("its configuration differs from the one expected: retrain it")
    if _sha256(directory / PAYLOAD) != manifest.payload_sha256:
        problems.append("its payload does not match the checksum in its manifest")
    if problems:
        raise Conflict(f"refusing the model artifact in {directory}: {'; '.join(problems)}")
    return joblib.load(directory / PAYLOAD), manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
