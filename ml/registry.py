"""The model registry: versioned artifacts with their metrics, training window, configuration hash and
code version, moved through stages staging → production → archived.

At most one version per kind is in production (a partial unique index guarantees it). Promoting a
version archives the one it replaces; rolling back archives the current production version and
restores the one that was archived most recently. Loading a version checks that its artifact's
manifest still matches what was registered, so a replaced or retrained file is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.errors import Conflict, NotFound
from core.models import ModelKind, ModelStage, ModelVersion
from ml import artifacts, churn, clv

# What each registry kind holds: the ``kind`` its artifacts' manifests carry.
ARTIFACT_KINDS = {
    ModelKind.CHURN_CONTRACTUAL: churn.KIND,
    ModelKind.CHURN_NONCONTRACTUAL: churn.KIND,
    ModelKind.CLV: clv.ClvModel.kind,
}


def artifact_directory(models_path: Path, kind: ModelKind, version: int) -> Path:
    return models_path / kind.value / f"v{version}"


def next_version(session: Session, kind: ModelKind) -> int:
    latest = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.kind == kind))
    return (latest or 0) + 1


def register(
    session: Session,
    kind: ModelKind,
    version: int,
    directory: Path,
    *,
    metrics: dict[str, Any],
    training_window: dict[str, Any],
    feature_profile: dict[str, Any] | None = None,
) -> ModelVersion:
    """Record a saved artifact as a new staging version (its manifest supplies hash and code version)."""
    manifest = artifacts.read_manifest(directory)
    if manifest.kind != ARTIFACT_KINDS[kind]:
        raise Conflict(f"the artifact in {directory} is a {manifest.kind!r} model, not a {kind.value} model")
    model_version = ModelVersion(
        kind=kind,
        version=version,
        stage=ModelStage.STAGING,
        artifact_path=str(directory),
        config_hash=manifest.config_hash,
        code_version=manifest.code_version,
        metrics=metrics,
        training_window=training_window,
        feature_profile=feature_profile or {},
    )
    session.add(model_version)
    session.flush()
    return model_version


def list_versions(session: Session, kind: ModelKind | None = None) -> list[ModelVersion]:
    query = select(ModelVersion).order_by(ModelVersion.kind, ModelVersion.version.desc())
    if kind is not None:
        query = query.where(ModelVersion.kind == kind)
    return list(session.scalars(query))


def get(session: Session, kind: ModelKind, version: int) -> ModelVersion:
    found = session.scalar(select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.version == version))
    if found is None:
        raise NotFound(f"no {kind.value} model version {version} (see `nudge models list`)")
    return found


def production(session: Session, kind: ModelKind) -> ModelVersion:
    """The version in production; ``NotFound`` with what to do when there is none."""
    found = _in_production(session, kind)
    if found is None:
        raise NotFound(
            f"no {kind.value} model in production: train one (`nudge train {kind.value}`) "
            f"and promote it (`nudge models promote {kind.value} VERSION`)"
        )
    return found


def promote(session: Session, kind: ModelKind, version: int) -> ModelVersion:
    """Put a version in production, archiving the one it replaces."""
    candidate = get(session, kind, version)
    if candidate.stage is ModelStage.PRODUCTION:
        raise Conflict(f"{kind.value} model version {version} is already in production")
    verify_artifact(candidate)
    current = _in_production(session, kind)
    if current is not None:
        _move(session, current, ModelStage.ARCHIVED)
    _move(session, candidate, ModelStage.PRODUCTION)
    return candidate


def rollback(session: Session, kind: ModelKind) -> ModelVersion:
    """Archive the production version and restore the most recently archived one."""
    current = production(session, kind)
    previous = session.scalar(
        select(ModelVersion)
        .where(ModelVersion.kind == kind, ModelVersion.stage == ModelStage.ARCHIVED)
        .order_by(ModelVersion.stage_changed_at.desc(), ModelVersion.version.desc())
        .limit(1)
    )
    if previous is None:
        raise Conflict(f"no archived {kind.value} model to roll back to; version {current.version} stays in production")
    verify_artifact(previous)
    _move(session, current, ModelStage.ARCHIVED)
    _move(session, previous, ModelStage.PRODUCTION)
    return previous


def verify_artifact(model_version: ModelVersion) -> artifacts.Manifest:
    """The artifact's manifest, refused unless it is the one registered (kind, configuration, code version)."""
    directory = Path(model_version.artifact_path)
    manifest = artifacts.read_manifest(directory)
    registered = (ARTIFACT_KINDS[model_version.kind], model_version.config_hash, model_version.code_version)
    found = (manifest.kind, manifest.config_hash, manifest.code_version)
    if found != registered or manifest.code_version != artifacts.CODE_VERSION:
        raise Conflict(
            f"refusing {model_version.kind.value} model version {model_version.version}: its artifact in {directory} "
            f"does not match the registry or this code ({_describe(found)} vs registered {_describe(registered)}, "
            f"code {artifacts.CODE_VERSION})"
        )
    return manifest


def _in_production(session: Session, kind: ModelKind) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.stage == ModelStage.PRODUCTION)
    )


def _move(session: Session, model_version: ModelVersion, stage: ModelStage) -> None:
    model_version.stage = stage
    model_version.stage_changed_at = utcnow()
    session.flush()  # archive before promoting: the one-production index checks each statement


def _describe(fields: tuple[str, str, str]) -> str:
    kind, config, code = fields
    return f"{kind}, config {config[:12]}, code {code}"
