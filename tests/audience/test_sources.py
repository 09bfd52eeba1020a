"""Sources and write keys: a key is returned once, stored only as its hash, and stops working when revoked."""

from __future__ import annotations

import pytest

from audience.sources import authenticate, create_source, hash_write_key, list_sources, revoke_source
from core.db import Database
from core.errors import BadRequest, Conflict, NotFound, Unauthorized


def test_a_new_source_stores_only_the_hash_of_its_key(db: Database) -> None:
    with db.session() as session:
        new = create_source(session, " website ")

    assert new.source.name == "website"
    assert new.source.write_key_hash == hash_write_key(new.write_key)
    assert len(new.write_key) == 43  # 32 random bytes, URL-safe base64
    assert new.write_key not in repr(new)


def test_each_source_gets_a_different_key(db: Database) -> None:
    with db.session() as session:
        keys = {create_source(session, name).write_key for name in ("a", "b", "c")}

    assert len(keys) == 3


def test_a_key_authenticates_its_source(db: Database) -> None:
    with db.session() as session:
        new = create_source(session, "website")
    with db.session() as session:
        assert authenticate(session, new.write_key).id == new.source.id


def test_an_unknown_key_is_refused(db: Database) -> None:
    with db.session() as session:
        create_source(session, "website")
    with db.session() as session, pytest.raises(Unauthorized) as refused:
        authenticate(session, "not-a-key")

    assert refused.value.message == "invalid or revoked write key"


def test_a_revoked_key_is_refused_and_revoking_again_keeps_the_first_time(db: Database) -> None:
    with db.session() as session:
        new = create_source(session, "website")
    with db.session() as session:
        revoked_at = revoke_source(session, "website").revoked_at
    with db.session() as session:
        assert revoke_source(session, "website").revoked_at == revoked_at
        with pytest.raises(Unauthorized):
            authenticate(session, new.write_key)


def test_a_taken_name_is_a_conflict(db: Database) -> None:
    with db.session() as session:
        create_source(session, "website")
    with db.session() as session, pytest.raises(Conflict) as refused:
        create_source(session, "website")

    assert refused.value.message == "a source named 'website' already exists"


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_name_must_be_1_to_100_characters(db: Database, name: str) -> None:
    with db.session() as session, pytest.raises(BadRequest) as refused:
        create_source(session, name)

    assert refused.value.message == "a source name is 1 to 100 characters"


def test_revoking_an_unknown_source_is_not_found(db: Database) -> None:
    with db.session() as session, pytest.raises(NotFound) as refused:
        revoke_source(session, "nope")

    assert refused.value.message == "no source named 'nope'"


def test_sources_are_listed_by_name(db: Database) -> None:
    with db.session() as session:
        for name in ("web", "backend", "app"):
            create_source(session, name)
    with db.session() as session:
        assert [source.name for source in list_sources(session)] == ["app", "backend", "web"]
