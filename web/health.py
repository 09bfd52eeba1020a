"""Health probes for load balancers and orchestrators; unauthenticated."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from core import migrate
from core.errors import ServiceUnavailable
from web.deps import DatabaseDep
from web.errors import responses

log = logging.getLogger(__name__)
router = APIRouter(prefix="/health", tags=["health"])


class Status(BaseModel):
    status: str


@router.get("/live", summary="Liveness: the process answers")
async def live() -> Status:
    """Always 200 while the process serves requests; touches no database."""
    return Status(status="live")


@router.get("/ready", summary="Readiness: the database answers at the current schema", responses=responses(503))
def ready(database: DatabaseDep) -> Status:
    """200 when the database answers and its migrations are current; 503 with the reason otherwise."""
    try:
        current = migrate.is_current(database.engine)
    except SQLAlchemyError as error:  # the probe's whole job is to turn this into a 503
        log.warning("readiness: database unavailable (%s)", type(error).__name__)
        raise ServiceUnavailable("the database does not answer") from error
    if not current:
        raise ServiceUnavailable("the database schema is not current: run `nudge db upgrade`")
    return Status(status="ready")
