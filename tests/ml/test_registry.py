"""The registry keeps one production version per kind, promotes and rolls back, and refuses artifacts
that no longer match what was registered."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import Database
from core.errors import Conflict, NotFound
from core.models import ModelKind, ModelStage, ModelVersion
from ml import artifacts, churn, registry


def _train(
    session: Session, tmp_path: Path, kind: ModelKind = ModelKind.CHURN_CONTRACTUAL, config: str = "a"
) -> ModelVersion:
    version = registry.next_version(session, kind)
    directory = registry.artifact_directory(tmp_path, kind, version)
    artifacts.save(directory, registry.ARTIFACT_KINDS[kind], {"config": config}, {"weights": [version]})
    return registry.register(
        session,
        kind,
        version,
        directory,
        metrics={"roc_auc": 0.8},
        training_window={"as_of": "2026-09-01"},
    )


def test_new_versions_are_numbered_per_kind_and_start_in_staging(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        first, second = _train(session, tmp_path), _train(session, tmp_path)
        clv = _train(session, tmp_path, ModelKind.CLV)

    assert (first.version, second.version, clv.version) == (1, 2, 1)
    assert {first.stage, second.stage, clv.stage} == {ModelStage.STAGING}
    assert first.config_hash == artifacts.config_hash({"config": "a"})
    assert first.code_version == artifacts.CODE_VERSION


def test_promote_archives_the_version_it_replaces(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        _train(session, tmp_path), _train(session, tmp_path)
        registry.promote(session, ModelKind.CHURN_CONTRACTUAL, 1)
        registry.promote(session, ModelKind.CHURN_CONTRACTUAL, 2)

    with db.session() as session:
        stages = {v.version: v.stage for v in registry.list_versions(session, ModelKind.CHURN_CONTRACTUAL)}
        assert stages == {1: ModelStage.ARCHIVED, 2: ModelStage.PRODUCTION}
        assert registry.production(session, ModelKind.CHURN_CONTRACTUAL).version == 2


def test_rollback_restores_the_previous_production_version(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        for _ in range(3):
            _train(session, tmp_path)
        registry.promote(session, ModelKind.CHURN_CONTRACTUAL, 1)
        registry.promote(session, ModelKind.CHURN_CONTRACTUAL, 3)

        restored = registry.rollback(session, ModelKind.CHURN_CONTRACTUAL)

        assert restored.version == 1
        stages = {v.version: v.stage for v in registry.list_versions(session, ModelKind.CHURN_CONTRACTUAL)}
        assert stages == {1: ModelStage.PRODUCTION, 2: ModelStage.STAGING, 3: ModelStage.ARCHIVED}


def test_rollback_without_an_archived_version_is_refused_and_changes_nothing(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        _train(session, tmp_path)
        registry.promote(session, ModelKind.CHURN_CONTRACTUAL, 1)

        with pytest.raises(Conflict, match="no archived churn_contractual model to roll back to"):
            registry.rollback(session, ModelKind.CHURN_CONTRACTUAL)

        assert registry.production(session, ModelKind.CHURN_CONTRACTUAL).version == 1


def test_no_production_model_says_what_to_do(db: Database) -> None:
    with db.session() as session, pytest.raises(NotFound, match=r"nudge train churn_contractual.*nudge models promote"):
        registry.production(session, ModelKind.CHURN_CONTRACTUAL)


def test_promoting_an_unknown_version_is_not_found(db: Database) -> None:
    with db.session() as session, pytest.raises(NotFound, match="no clv model version 7"):
        registry.promote(session, ModelKind.CLV, 7)


def test_an_artifact_replaced_on_disk_is_refused_at_promotion(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        version = _train(session, tmp_path)
        artifacts.save(Path(version.artifact_path), churn.KIND, {"config": "other"}, {"weights": [9]})

        with pytest.raises(Conflict, match="does not match the registry"):
            registry.promote(session, ModelKind.CHURN_CONTRACTUAL, 1)
        assert version.stage is ModelStage.STAGING


def test_the_database_refuses_a_second_production_version(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        first, second = _train(session, tmp_path), _train(session, tmp_path)
        first.stage = ModelStage.PRODUCTION
        session.flush()
        second.stage = ModelStage.PRODUCTION

        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()


def test_artifacts_refuse_a_tampered_payload_another_kind_or_another_config(tmp_path: Path) -> None:
    artifacts.save(tmp_path, "churn", {"c": 1}, {"w": 1})

    with pytest.raises(Conflict, match="not 'clv'"):
        artifacts.load(tmp_path, "clv")
    with pytest.raises(Conflict, match="configuration differs"):
        artifacts.load(tmp_path, "churn", artifacts.config_hash({"c": 2}))
    (tmp_path / artifacts.PAYLOAD).write_bytes(b"tampered")
    with pytest.raises(Conflict, match="does not match the checksum"):
        artifacts.load(tmp_path, "churn")


def test_loading_from_an_empty_directory_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"missing manifest\.json"):
        artifacts.load(tmp_path, "churn")
