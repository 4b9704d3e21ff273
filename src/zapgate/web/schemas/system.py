"""Health, readiness and the admin views (workers, every user's sessions)."""

from __future__ import annotations

from pydantic import BaseModel

from zapgate.web.schemas.sessions import SessionPublic


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    database: str
    workers: dict[str, str]


class WorkerInfo(BaseModel):
    worker_id: str
    worker_url: str | None
    port: int | None
    reachable: bool
    detail: str
    sessions: int


class WorkerList(BaseModel):
    topology: str
    items: list[WorkerInfo]


class AdminSession(SessionPublic):
    user_id: int


class AdminSessionList(BaseModel):
    items: list[AdminSession]
