"""How the web tier talks to a worker: `WorkerAPI` is the one interface, implemented by the
in-process `Worker` (embedded topology, no HTTP hop) and by `HttpWorkerClient`."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from zapgate import errors
from zapgate.config import url_port
from zapgate.worker.schemas import (
    JournalPage,
    PairCodeOut,
    SendOut,
    SessionStatus,
    WorkerHealth,
)


class WorkerAPI(Protocol):
    async def health(self) -> WorkerHealth: ...

    async def start_session(
        self, client_id: str, session_dir: str, engine: str
    ) -> SessionStatus: ...

    async def stop_session(self, client_id: str) -> SessionStatus: ...

    async def logout_session(self, client_id: str) -> SessionStatus: ...

    async def delete_session(self, client_id: str) -> None: ...

    async def status(self, client_id: str) -> SessionStatus: ...

    async def pair_code(self, client_id: str, phone: str) -> str: ...

    async def send_text(self, client_id: str, message_id: str, to: str, text: str) -> str: ...

    async def events(self, after: int, limit: int = 100, wait: float = 0.0) -> JournalPage: ...

    async def sim_scan(self, qr: str, phone: str) -> str: ...

    async def sim_phone_send(self, phone: str, to: str, text: str) -> str: ...


TOKEN_HEADER = "X-Zapgate-Worker-Token"


class HttpWorkerClient:
    """A worker reached over HTTP. Connection failures become `WorkerUnreachable` naming the
    URL and the port; error bodies become the GatewayError the worker raised."""

    def __init__(self, url: str, *, token: str | None, timeout: float, hint: str = "") -> None:
        self.url = url.rstrip("/")
        self.port = url_port(self.url)
        self.hint = hint
        headers = {TOKEN_HEADER: token} if token else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    def unreachable(self, exc: BaseException) -> errors.WorkerUnreachable:
        return errors.WorkerUnreachable(
            f"WhatsApp worker not reachable at {self.url} (port {self.port}): {type(exc).__name__}",
            hint=self.hint or None,
            worker_url=self.url,
            port=self.port,
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        read_timeout: float | None = None,
    ) -> Any:
        try:
            kwargs: dict[str, Any] = {"json": json, "params": params}
            if read_timeout is not None:
                kwargs["timeout"] = read_timeout
            resp = await self._http.request(method, path, **kwargs)
        except (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.RemoteProtocolError,
            httpx.ReadError,
        ) as exc:
            raise self.unreachable(exc) from exc
        except httpx.TimeoutException as exc:
            raise errors.WorkerUnreachable(
                f"WhatsApp worker at {self.url} (port {self.port}) did not answer in time",
                hint=self.hint or None,
                worker_url=self.url,
                port=self.port,
            ) from exc
        if resp.status_code == 204:
            return None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400:
            if resp.status_code == 401 and not isinstance(body, dict):
                body = {}
            if isinstance(body, dict) and "errcode" in body:
                if resp.status_code == 401:
                    raise errors.WorkerError(
                        f"worker at {self.url} refused our token",
                        hint="Set the same ZAPGATE_WORKER_TOKEN on the web tier and the worker.",
                    )
                raise errors.from_dict(body, resp.status_code)
            raise errors.WorkerError(
                f"worker at {self.url} answered HTTP {resp.status_code}",
                hint="Is something else listening on that port? `zapgate doctor` checks it.",
            )
        return body

    async def health(self) -> WorkerHealth:
        return WorkerHealth.model_validate(await self._call("GET", "/internal/health"))

    async def start_session(self, client_id: str, session_dir: str, engine: str) -> SessionStatus:
        body = {"session_dir": session_dir, "engine": engine}
        data = await self._call("PUT", f"/internal/sessions/{client_id}", json=body)
        return SessionStatus.model_validate(data)

    async def stop_session(self, client_id: str) -> SessionStatus:
        data = await self._call("POST", f"/internal/sessions/{client_id}/stop")
        return SessionStatus.model_validate(data)

    async def logout_session(self, client_id: str) -> SessionStatus:
        data = await self._call("POST", f"/internal/sessions/{client_id}/logout")
        return SessionStatus.model_validate(data)

    async def delete_session(self, client_id: str) -> None:
        await self._call("DELETE", f"/internal/sessions/{client_id}")

    async def status(self, client_id: str) -> SessionStatus:
        data = await self._call("GET", f"/internal/sessions/{client_id}")
        return SessionStatus.model_validate(data)

    async def pair_code(self, client_id: str, phone: str) -> str:
        data = await self._call(
            "POST", f"/internal/sessions/{client_id}/pair-code", json={"phone": phone}
        )
        return PairCodeOut.model_validate(data).code

    async def send_text(self, client_id: str, message_id: str, to: str, text: str) -> str:
        body = {"message_id": message_id, "to": to, "text": text}
        data = await self._call("POST", f"/internal/sessions/{client_id}/messages", json=body)
        return SendOut.model_validate(data).id

    async def events(self, after: int, limit: int = 100, wait: float = 0.0) -> JournalPage:
        data = await self._call(
            "GET",
            "/internal/events",
            params={"after": after, "limit": limit, "wait": wait},
            read_timeout=wait + 10.0,
        )
        return JournalPage.model_validate(data)

    async def sim_scan(self, qr: str, phone: str) -> str:
        data = await self._call("POST", "/internal/sim/scan", json={"qr": qr, "phone": phone})
        return str(data["device_id"])

    async def sim_phone_send(self, phone: str, to: str, text: str) -> str:
        data = await self._call(
            "POST", f"/internal/sim/phones/{phone}/messages", json={"to": to, "text": text}
        )
        return str(data["id"])
