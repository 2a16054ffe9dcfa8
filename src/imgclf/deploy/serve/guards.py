"""What protects ``imgclf serve`` (and the studio) from its clients: the request-body limit, the ``Host`` check,
the content policy, the header timeout, and the check of the address before anything loads (see
:mod:`imgclf.deploy.serve.app`)."""

from __future__ import annotations

from imgclf.errors import ImgclfError

#: Seconds a client has to send a request's headers once connected (or after its previous answer).
HEADER_TIMEOUT_S = 10.0
#: Host names a server bound to a loopback address answers to.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")


def allowed_hosts(host: str) -> list[str]:
    """The ``Host`` names a server bound to ``host`` answers to: the loopback names for a loopback address, else
    ``host`` itself (``0.0.0.0`` or ``::``, every interface: any name, the user chose to be reachable)."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    if host in LOOPBACK_NAMES or host.startswith("127."):
        return sorted({*LOOPBACK_NAMES, host} - {"::1"})
    return [host]


class HostCheck:
    """ASGI middleware: answer 400 ``{"error"}`` to a request whose ``Host`` header (port left off) is not one of
    ``hosts`` (``"*"``: any). Starlette's ``TrustedHostMiddleware`` does the same with a plain-text answer."""

    def __init__(self, app, hosts: list[str]):
        self.app, self.hosts = app, {h.lower() for h in hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or "*" in self.hosts:
            return await self.app(scope, receive, send)
        raw = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").lower()
        name = raw.split("]")[0] + "]" if raw.startswith("[") else raw.split(":")[0]  # the port left off
        if name not in self.hosts:
            message = f"host {raw[:100]!r} is not served here (expected one of {sorted(self.hosts)})"
            return await _json_answer(send, 400, message + ": open the address imgclf serve printed.")
        return await self.app(scope, receive, send)


async def _json_answer(send, status: int, message: str) -> None:
    import json

    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})  # fmt: skip


#: The studio's Content-Security-Policy: scripts only from the server's own ``/static/`` files (no inline script,
#: no ``eval``), pictures also from ``data:`` and ``blob:`` URLs (thumbnails, the webcam), no plug-ins, no framing.
#: Inline ``style`` attributes stay allowed. (MDN, "Content-Security-Policy"; W3C CSP Level 3.)
CONTENT_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                  "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; "
                  "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")  # fmt: skip


class ContentPolicy:
    """ASGI middleware: every answer carries :data:`CONTENT_POLICY` (``Content-Security-Policy``) and
    ``X-Content-Type-Options: nosniff``, so a page runs only the server's own script files."""

    def __init__(self, app, policy: str = CONTENT_POLICY):
        self.app, self.policy = app, policy.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_policy(message):
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"content-security-policy"]
                headers += [(b"content-security-policy", self.policy), (b"x-content-type-options", b"nosniff")]
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, with_policy)


class BodyLimit:
    """ASGI middleware: answer 413 as soon as a request body passes ``max_bytes`` (by its Content-Length, or by
    counting the chunks as they arrive), before anything parses or stores it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        seen, refused = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge  # stops the parser reading on; the answer is replaced below
            return message

        async def guarded(message):
            nonlocal refused
            if seen > self.max_bytes:  # whatever the app answers to the aborted parse, the client gets a 413
                if not refused:
                    refused = True
                    await self._refuse(send)
                return
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            if not refused:
                await self._refuse(send)

    async def _refuse(self, send):
        await _json_answer(send, 413, f"upload too large: the limit is {self.max_bytes:,} bytes.")


class _TooLarge(Exception):
    pass


def check_address(host: str, port: int) -> None:
    """Refuse an address the server could not listen on, before the model loads.

    Raises:
        ImgclfError: ``port`` outside 1-65535, ``host`` not an address or name of this computer, or the port taken.
    """
    import socket

    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ImgclfError(f"port must be an int in [1, 65535]. Received: {port!r}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ImgclfError(
            f"host must be an address of this computer, e.g. 127.0.0.1. Received: {host!r} ({exc})"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            reason = "is in use by another program" if exc.errno == 98 else f"cannot be listened on ({exc.strerror})"
            raise ImgclfError(f"{host}:{port} {reason}; choose another --port or --host.") from None


def header_timeout_protocol(seconds: float = HEADER_TIMEOUT_S):
    """uvicorn's h11 HTTP protocol, closing a connection that has not sent a whole request's headers within
    ``seconds`` of connecting or of its previous answer (uvicorn has no such timeout: a client sending headers a
    byte at a time held a connection open indefinitely)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeout(H11Protocol):
        _header_timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def _arm(self):
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self):
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self):
            self._header_timer = None
            if self.cycle is None or self.cycle.response_complete:  # still waiting for headers
                self.transport.close()

        def data_received(self, data):
            before = self.cycle
            if before is None or before.response_complete:
                self._arm()
            super().data_received(data)
            if self.cycle is not before:  # the headers are in: the request is being handled
                self._disarm()

        def connection_lost(self, exc):
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeout


#: Methods that only read: every other method may write.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
TOKEN_HEADER, TOKEN_COOKIE = "x-imgclf-token", "imgclf_token"


class WriteGuard:
    """ASGI middleware for a local app whose requests write files (the studio): a request that may write must come
    from a page of this server — its ``Origin`` header names the same host and port as its ``Host`` header (a page
    of another site, which a browser lets post here, names its own) — and, with a ``token`` (a server bound off
    loopback), every request carries it (the ``X-Imgclf-Token`` header, the ``imgclf_token`` cookie, or ``?token=``
    on the first page). Refused with 403 ``{"error"}`` before the app sees the request: nothing is written.
    (OWASP's CSRF cheat sheet: verifying the origin with standard headers.)"""

    def __init__(self, app, token: str | None = None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        if self.token is not None and not self._has_token(scope, headers):
            return await _json_answer(send, 403, "this studio needs its token: open the address it printed.")
        if scope.get("method", "GET") not in SAFE_METHODS:
            origin, host = headers.get("origin", ""), headers.get("host", "")
            if not host or origin.split("://", 1)[-1].rstrip("/") != host:
                return await _json_answer(send, 403, "cross-origin or origin-less write refused: use the studio's "
                                                     "own page.")  # fmt: skip
        return await self.app(scope, receive, send)

    def _has_token(self, scope, headers: dict) -> bool:
        import hmac
        from http.cookies import SimpleCookie
        from urllib.parse import parse_qs

        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 — a malformed cookie header carries no token
            cookie = SimpleCookie()
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = [headers.get(TOKEN_HEADER), cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None,
                 *(query.get("token") or [])]  # fmt: skip
        return any(g is not None and hmac.compare_digest(g.encode(), self.token.encode()) for g in given)
