"""``talkbench study serve``: the participant page and the admin page (Flask, served by waitress).

What a participant's browser receives: one HTML page, one script, one stylesheet, JSON with opaque
video tokens, and the videos (remuxed without metadata, under random names). Method names stay in
``study.json`` on the server. A participant is a random secret in an HttpOnly SameSite=Strict cookie;
each served video comes with a ticket (HMAC of participant and video under the study's secret), so a
submission for another participant or a made-up video is refused, and a replay finds the rating
already stored (409).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import secrets
import time
from functools import lru_cache
from hashlib import sha256
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, render_template, request, send_file
from werkzeug.exceptions import HTTPException

from talkbench.errors import ConfigError
from talkbench.study.definition import CRITERIA, SCALE, SCALE_LABELS, Check, Study, load_study
from talkbench.study.ratings import Participant, RatingRejected, RatingStore

log = logging.getLogger(__name__)
COOKIE = "tb_participant"
TEMPLATES = Path(__file__).resolve().parent / "templates"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; "
                               "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _read_secret(path: Path) -> bytes:
    """The study's server secret (tickets stay valid across restarts), made on first use."""
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())


def admin_token(study_dir: str | Path) -> str:
    path = Path(study_dir) / "admin-token"
    if not path.is_file():
        raise ConfigError("admin-token missing (pass --admin-token or recreate the study)", path)
    token = path.read_text().strip()
    if len(token) < 16:
        raise ConfigError("admin token too short (need 16+ characters)", path)
    return token


def check_videos(study: Study) -> None:
    missing = study.missing_files()
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ConfigError(f"{len(missing)} study video(s) missing: {shown}; restore them or recreate the study",
                          study.path)


def _scores(body: dict[str, Any]) -> dict[str, int]:
    out = {}
    for c in CRITERIA:
        v = body.get(c.key)
        # bool is an int in Python; "3" and 3.0 are not ratings either.
        if not isinstance(v, int) or isinstance(v, bool) or not SCALE[0] <= v <= SCALE[1]:
            raise RatingRejected(f"{c.key} must be an integer from {SCALE[0]} to {SCALE[1]}, got {v!r}", 400)
        out[c.key] = v
    return out


def make_app(study_dir: str | Path, token: str | None = None, proxy: bool = False) -> Flask:
    """The WSGI app of a study. ``token``: the admin token (default: ``STUDY/admin-token``).
    ``proxy``: trust one reverse proxy's X-Forwarded-For/-Proto (for Secure cookies behind HTTPS)."""
    study = load_study(study_dir)
    check_videos(study)
    token = token or admin_token(study.path)
    store = RatingStore(study.path / "ratings.sqlite")
    secret = _read_secret(study.path / ".secret")
    app = Flask(__name__, static_folder=None, template_folder=str(TEMPLATES))
    app.config["MAX_CONTENT_LENGTH"] = 4096  # a rating is a few dozen bytes
    if proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    order = lru_cache(maxsize=1024)(study.order)

    def ticket(p: Participant, item: str) -> str:
        return hmac.new(secret, f"{p.id}:{item}".encode(), sha256).hexdigest()

    def error(status: int, message: str) -> Response:
        resp = jsonify(error=message)
        resp.status_code = status
        return resp

    def current() -> Participant | None:
        return store.participant(request.cookies.get(COOKIE))

    def json_body() -> dict[str, Any]:
        if not request.is_json:
            raise RatingRejected("expected a JSON body (Content-Type: application/json)", 415)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise RatingRejected("the body is not a JSON object", 400)
        return body

    def same_origin() -> None:
        # Browsers send Origin on POST; a cross-site page must not submit for a participant.
        origin = request.headers.get("Origin")
        if origin and origin.rstrip("/") != request.host_url.rstrip("/"):
            raise RatingRejected("cross-origin request refused", 403)

    @app.after_request
    def headers(resp: Response) -> Response:
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        if request.path.startswith(("/api/", "/admin")):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.errorhandler(RatingRejected)
    def rejected(exc: RatingRejected) -> Response:
        return error(exc.status, exc.reason)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return error(exc.code or 500, exc.description or exc.name)

    @app.get("/")
    def page() -> str:
        return render_template("participant.html.j2", title=study.title, criteria=CRITERIA,
                               scale=range(SCALE[0], SCALE[1] + 1), scale_labels=SCALE_LABELS,
                               n_videos=len(study.videos) + len(study.checks), n_checks=len(study.checks),
                               require_watch=study.require_watch)

    @app.get("/<name>")
    def asset(name: str) -> Response:
        if name == "favicon.ico":
            return Response(status=204)
        if name not in ASSETS:
            abort(404, "no such page")
        return send_file(TEMPLATES / name, mimetype=ASSETS[name], max_age=0)

    @app.post("/api/consent")
    def consent() -> Response:
        same_origin()
        body = json_body()
        if body.get("consent") is not True:
            raise RatingRejected("consent must be given to take part", 400)
        p = current()
        if p is not None:  # a reload after consenting: same participant, nothing new
            return jsonify(participant=p.idx + 1)
        cookie = secrets.token_urlsafe(32)
        p = store.enrol(cookie, request.headers.get("User-Agent", ""))
        resp = jsonify(participant=p.idx + 1)
        resp.set_cookie(COOKIE, cookie, httponly=True, samesite="Strict", secure=request.is_secure,
                        max_age=60 * 60 * 24 * 30)
        return resp

    @app.get("/api/next")
    def next_video() -> Response:
        p = current()
        if p is None:  # not an error: the page shows the consent form
            return jsonify(consent_needed=True)
        seq = order(p.idx)
        done = store.rated(p)
        position = len(done)
        if position >= len(seq):
            return jsonify(done=True, position=position, total=len(seq), participant=p.idx + 1)
        item = seq[position]
        store.mark_shown(p, item)
        entry = study.by_token[item]
        return jsonify(done=False, position=position, total=len(seq), participant=p.idx + 1, item=item,
                       video=f"/v/{item}", ticket=ticket(p, item),
                       check=entry.answer if isinstance(entry, Check) else None)

    @app.post("/api/rate")
    def rate() -> Response:
        same_origin()
        body = json_body()
        allowed = {"item", "ticket", *(c.key for c in CRITERIA)}
        extra = sorted(set(body) - allowed)
        if extra:
            raise RatingRejected(f"unexpected field(s): {', '.join(extra)}", 400)
        p = current()
        if p is None:
            raise RatingRejected("no participant session: give consent first", 401)
        item = body.get("item")
        if not isinstance(item, str) or item not in study.by_token:
            raise RatingRejected(f"unknown video id {item!r}", 404)
        t = body.get("ticket")
        if not isinstance(t, str) or not hmac.compare_digest(t, ticket(p, item)):
            raise RatingRejected("this submission's ticket does not belong to this participant and video", 403)
        n = store.submit(p, order(p.idx), item, _scores(body))
        return jsonify(ok=True, rated=n, total=len(order(p.idx)))

    @app.get("/v/<token>")
    def video(token: str) -> Response:
        if current() is None:
            abort(401, "no participant session")
        entry = study.by_token.get(token)
        if entry is None:
            abort(404, "unknown video id")
        path = study.path / entry.file
        if not path.is_file():
            log.error("study video missing: %s", path)
            abort(410, "this video is missing on the server; please tell the study's organiser")
        return send_file(path, mimetype="video/mp4", conditional=True, etag=True, max_age=0)

    def admin_ok() -> bool:
        given = request.args.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ")
        return bool(given) and hmac.compare_digest(given.encode(), token.encode())

    def status() -> dict[str, Any]:
        df = store.participants()
        total = len(study.videos) + len(study.checks)
        rows = [{"participant": int(r.idx) + 1, "rated": int(r.rated), "total": total,
                 "complete": _present(r.completed),
                 "started": _iso(r.created), "last": _iso(r.last)} for r in df.itertuples()]
        return {"title": study.title, "planned": study.participants, "enrolled": len(rows),
                "completed": sum(r["complete"] for r in rows), "per_participant": total,
                "ratings": int(df["rated"].sum()) if len(df) else 0, "participants": rows}

    @app.get("/admin")
    def admin() -> Response | str:
        if not admin_ok():
            return error(403, "admin token required (?token=... from STUDY/admin-token)")
        return render_template("admin.html.j2", s=status())

    @app.get("/admin/status.json")
    def admin_json() -> Response:
        if not admin_ok():
            return error(403, "admin token required")
        return jsonify(status())

    return app


def _present(t: float | None) -> bool:
    return t is not None and not (isinstance(t, float) and math.isnan(t))


def _iso(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if _present(t) else ""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(app: Flask, host: str = "127.0.0.1", port: int = 8765, threads: int = 8) -> None:
    """Serve ``app`` until interrupted with waitress (a production WSGI server, pure Python)."""
    from waitress import serve as waitress_serve

    waitress_serve(app, host=host, port=port, threads=threads, ident="talkbench-study")
