"""The web app's routes: Starlette, Jinja2 templates, plain HTML and CSS with a few lines of JavaScript.

Every page but the login needs a session; every state-changing request (lock, unlock,
logout) is a POST carrying the session's CSRF token. Segments are addressed by id (see
edge.web.footage); clips are served with HTTP Range, so the phone's player can seek. Pages
send a strict Content-Security-Policy (scripts and styles from this app only; images
from the configured tile server only when the owner set one) and are never cached.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import (FileResponse, PlainTextResponse, RedirectResponse, Response,
                                 StreamingResponse)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from edge import __version__
from edge.config import Config
from edge.errors import UserError
from edge.web.auth import LoginLimiter, PasswordStore, Session, Sessions
from edge.web.footage import Footage, NotFound
from edge.web.preview import LatestJpeg
from edge.web.track import draw_track

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "dashcam_session"
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class WebContext:
    footage: Footage
    config: Config
    passwords: PasswordStore
    sessions: Sessions = field(default_factory=Sessions)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    live: LatestJpeg | None = None  # set when the app runs inside `dashcam run`
    gps_fix: Callable[[], bool | None] = lambda: None  # whether the recorder has a fix now (None: unknown)
    sensors: Callable[[], tuple[float | None, bool]] = lambda: (None, False)
    doctor_results: Callable[[], list[dict[str, str]] | None] = lambda: None
    doctor_preview: Callable[[], bytes | None] = lambda: None  # the last doctor's redacted preview JPEG
    secure_cookie: bool = False


def build_app(context: WebContext) -> Starlette:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(version=__version__)
    pages = _Pages(context, templates)
    routes = [
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.session_required(pages.logout, post=True), methods=["POST"]),
        Route("/", pages.session_required(pages.trips)),
        Route("/trips/{trip_id:int}", pages.session_required(pages.trip)),
        Route("/trips/{trip_id:int}/lock", pages.session_required(pages.lock_trip, post=True), methods=["POST"]),
        Route("/trips/{trip_id:int}/unlock", pages.session_required(pages.unlock_trip, post=True), methods=["POST"]),
        Route("/trips/{trip_id:int}/export.zip", pages.session_required(pages.export_trip)),
        Route("/segments/{segment_id}", pages.session_required(pages.segment)),
        Route("/segments/{segment_id}/video", pages.session_required(pages.video)),
        Route("/segments/{segment_id}/download", pages.session_required(pages.download)),
        Route("/segments/{segment_id}/lock", pages.session_required(pages.lock_segment, post=True), methods=["POST"]),
        Route("/segments/{segment_id}/unlock", pages.session_required(pages.unlock_segment, post=True),
              methods=["POST"]),
        Route("/live", pages.session_required(pages.live)),
        Route("/incident", pages.session_required(pages.incident, post=True), methods=["POST"]),
        Route("/live.jpg", pages.session_required(pages.live_jpeg)),
        Route("/status", pages.session_required(pages.status)),
        Route("/doctor-preview.jpg", pages.session_required(pages.doctor_preview)),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    tiles_origin = _origin(context.config.web.map_tiles_url)
    return Starlette(routes=routes, middleware=[Middleware(_SecurityHeaders, tiles_origin=tiles_origin)],
                     exception_handlers={NotFound: _not_found})


async def _not_found(_request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"not found: {exc}", status_code=404)


def _origin(url: str) -> str:
    if not url:
        return ""
    parts = urlsplit(url.replace("{", "").replace("}", ""))
    return f"{parts.scheme}://{parts.netloc}"


class _SecurityHeaders(BaseHTTPMiddleware):
    def __init__(self, app: Any, tiles_origin: str) -> None:
        super().__init__(app)
        images = f"'self' {tiles_origin}".strip()
        self._policy = (f"default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; "
                        "media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                        "base-uri 'none'")

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", self._policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response


class _Pages:
    def __init__(self, context: WebContext, templates: Jinja2Templates) -> None:
        self.context = context
        self.footage = context.footage
        self.templates = templates

    # ---- sessions ----------------------------------------------------------------------------------------------

    def session_required(self, handler: Callable[[Request, Session], Awaitable[Response]],
                         post: bool = False) -> Handler:
        async def guarded(request: Request) -> Response:
            session = self.context.sessions.get(request.cookies.get(COOKIE))
            if session is None:
                if post or request.url.path.endswith((".jpg", ".zip", "/video", "/download")):
                    return PlainTextResponse("log in first", status_code=401)
                return RedirectResponse("/login", status_code=303)
            if post:
                form = await request.form()
                if form.get("csrf") != session.csrf:
                    return PlainTextResponse("missing or wrong CSRF token: reload the page", status_code=403)
            return await handler(request, session)

        return guarded

    def _page(self, request: Request, name: str, session: Session | None, **values: Any) -> Response:
        return self.templates.TemplateResponse(request, name, {"csrf": session.csrf if session else "", **values})

    async def login_form(self, request: Request) -> Response:
        return self._page(request, "login.html", None, error="")

    async def login(self, request: Request) -> Response:
        address = request.client.host if request.client else "?"
        form = await request.form()
        # No await from here to the failure being counted: parallel attempts cannot all pass the check first.
        wait = self.context.limiter.wait_s(address)
        if wait > 0:
            return self._login_error(request, f"too many wrong passwords: wait {wait:.0f} s", 429)
        password = form.get("password")
        if not isinstance(password, str) or not self.context.passwords.check(password):
            self.context.limiter.failed(address)
            log.warning("a wrong web app password from %s", address)
            return self._login_error(request, "wrong password", 401)
        self.context.limiter.succeeded(address)
        session = self.context.sessions.start()
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", secure=self.context.secure_cookie,
                            path="/")
        return response

    def _login_error(self, request: Request, error: str, status: int) -> Response:
        response = self._page(request, "login.html", None, error=error)
        response.status_code = status
        return response

    async def logout(self, request: Request, session: Session) -> Response:
        self.context.sessions.end(session.token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # ---- trips and segments ------------------------------------------------------------------------------------

    async def trips(self, request: Request, session: Session) -> Response:
        page = _int(request.query_params.get("page"), 1)
        trips, pages = self.footage.trips(page)
        return self._page(request, "trips.html", session, trips=trips, page=min(max(page, 1), pages), pages=pages)

    async def trip(self, request: Request, session: Session) -> Response:
        view = self.footage.trip(request.path_params["trip_id"])
        drawing = draw_track(view.track, tiles_url=self.context.config.web.map_tiles_url)
        return self._page(request, "trip.html", session, view=view, drawing=drawing)

    async def segment(self, request: Request, session: Session) -> Response:
        view = self.footage.segment(request.path_params["segment_id"], _camera(request))
        return self._page(request, "segment.html", session, view=view, sidecar=view.sidecar)

    async def video(self, request: Request, _session: Session) -> Response:
        view = self.footage.segment(request.path_params["segment_id"], _camera(request))
        return FileResponse(view.stored.video_path, media_type="video/mp4")

    async def download(self, request: Request, _session: Session) -> Response:
        view = self.footage.segment(request.path_params["segment_id"], _camera(request))
        return FileResponse(view.stored.video_path, media_type="video/mp4", filename=view.stored.name)

    async def lock_segment(self, request: Request, _session: Session) -> Response:
        view = await run_in_threadpool(self.footage.set_locked, request.path_params["segment_id"], True,
                                       _camera(request))
        return RedirectResponse(f"/segments/{view.id}{view.query}", status_code=303)

    async def unlock_segment(self, request: Request, _session: Session) -> Response:
        view = await run_in_threadpool(self.footage.set_locked, request.path_params["segment_id"], False,
                                       _camera(request))
        return RedirectResponse(f"/segments/{view.id}{view.query}", status_code=303)

    async def lock_trip(self, request: Request, _session: Session) -> Response:
        await run_in_threadpool(self.footage.set_trip_locked, request.path_params["trip_id"], True)
        return RedirectResponse(f"/trips/{request.path_params['trip_id']}", status_code=303)

    async def unlock_trip(self, request: Request, _session: Session) -> Response:
        await run_in_threadpool(self.footage.set_trip_locked, request.path_params["trip_id"], False)
        return RedirectResponse(f"/trips/{request.path_params['trip_id']}", status_code=303)

    async def export_trip(self, request: Request, _session: Session) -> Response:
        name, chunks = self.footage.export_zip(request.path_params["trip_id"])
        return StreamingResponse(chunks, media_type="application/zip",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    # ---- live view and status ----------------------------------------------------------------------------------

    async def live(self, request: Request, session: Session) -> Response:
        return self._page(request, "live.html", session, recording=self.context.live is not None)

    async def incident(self, request: Request, session: Session) -> Response:
        try:
            pid = self.footage.lock_incident()
        except UserError as exc:
            return self._page(request, "live.html", session, recording=self.context.live is not None,
                              message=str(exc))
        return self._page(request, "live.html", session, recording=self.context.live is not None,
                          message=f"Kept: the recorder (pid {pid}) locks the current segment and the seconds "
                          "around it (record.lock_before_seconds, lock_after_seconds).")

    async def live_jpeg(self, _request: Request, _session: Session) -> Response:
        number, jpeg = self.context.live.get() if self.context.live else (0, None)
        if jpeg is None:
            return PlainTextResponse("no live view: dashcam run is not recording with web.enabled", status_code=404)
        return Response(jpeg, media_type="image/jpeg", headers={"X-Frame-Number": str(number)})

    async def status(self, request: Request, session: Session) -> Response:
        temperature, throttled = self.context.sensors()
        return self._page(request, "status.html", session, status=self.footage.status(),
                          gps_fix=self.context.gps_fix(), temperature=temperature, throttled=throttled,
                          doctor=self.context.doctor_results(), preview=self.context.doctor_preview() is not None,
                          config=_config_text(self.context.config))

    async def doctor_preview(self, _request: Request, _session: Session) -> Response:
        jpeg = self.context.doctor_preview()
        if jpeg is None:
            return PlainTextResponse("no preview: run dashcam doctor on this machine", status_code=404)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _camera(request: Request) -> str:
    """The `camera` query parameter: another camera of the car; Footage accepts only the names it knows."""
    return request.query_params.get("camera", "")


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _config_text(config: Config) -> str:
    """The active config as YAML, with the privacy zones' coordinates left out (they say where home is)."""
    data = dataclasses.asdict(config)
    for zone in data["gps"]["privacy_zones"]:
        zone["lat"] = zone["lon"] = "(hidden)"
    return yaml.safe_dump(data, sort_keys=False)
