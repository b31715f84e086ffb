"""``talkbench study``: design, agreement, creation, the server's bad-input and security cases, the report,
and a scripted participant in a real headless Chromium."""

from __future__ import annotations

import json
import math
import re
import shutil
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from talkbench.cli import cli
from talkbench.errors import ConfigError
from talkbench.io.video import write_video
from talkbench.results import safe_name
from talkbench.store import ResultStore, Row
from talkbench.study import (
    CRITERIA,
    build_study_report,
    krippendorff_alpha,
    load_study,
    mos,
    participant_order,
    williams_square,
)

METHODS = ("gt", "static", "wav2lip")
KEYS = [c.key for c in CRITERIA]


def make_run(run_dir: Path, dataset: str, n: int = 3, methods: tuple[str, ...] = METHODS,
             failed: tuple[tuple[str, int], ...] = ()) -> None:
    """A finished run as ``talkbench run`` leaves it: run.json, results.sqlite, media/<method>/<sample>.mp4
    (6 frames of 32x32 with a tone), one colour per method, one stripe per sample."""
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"config": {"dataset": dataset, "methods": list(methods)}}))
    store = ResultStore(run_dir / "results.sqlite", run=run_dir.name)
    t = np.arange(3840) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    for i in range(n):
        sid = f"spk{i}/{i:05d}"
        for j, m in enumerate(methods):
            if (m, i) in failed:
                store.commit_sample(m, dataset, sid, [Row(m, dataset, sid, "__generate__", None, "boom")])
                continue
            frames = np.full((6, 32, 32, 3), 60 * j, np.uint8)
            frames[:, :, :16] = 40 * i
            write_video(run_dir / "media" / m / f"{safe_name(sid)}.mp4", frames, audio)
            store.commit_sample(m, dataset, sid, [Row(m, dataset, sid, "psnr", 30.0 - j)])
    store.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("study-runs")
    make_run(root / "lrs2", "synth-lrs2", n=3, failed=(("static", 1),))  # sample 1 lacks a static video
    make_run(root / "hdtf", "synth-hdtf", n=2)
    # A tag naming the method inside one video: the study's copy must not carry it.
    src = root / "lrs2" / "media" / "wav2lip" / f"{safe_name('spk0/00000')}.mp4"
    tagged = src.with_name("tagged.mp4")
    with av.open(str(src)) as inp, av.open(str(tagged), "w", format="mp4") as out:
        out.metadata["title"] = "wav2lip output"
        mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for s in mapping.values():
            s.metadata["handler_name"] = "wav2lip handler"
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = mapping[packet.stream.index]
                out.mux(packet)
    tagged.replace(src)
    return root / "lrs2", root / "hdtf"


@pytest.fixture(scope="module")
def study_template(runs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study-template") / "S"
    res = CliRunner().invoke(cli, ["study", "create", "--runs", f"{runs[0]},{runs[1]}", "--methods", ",".join(METHODS),
                                   "--per-dataset", "2", "--out", str(out), "--seed", "3", "--participants", "3"])
    assert res.exit_code == 0, res.output
    assert "4 samples x 3 methods = 12 videos (+2 attention checks)" in res.output
    return out


@pytest.fixture()
def study_dir(study_template: Path, tmp_path: Path) -> Path:
    shutil.copytree(study_template, tmp_path / "S")
    return tmp_path / "S"


# ----------------------------------------------------------------------------------------------- statistics
def test_krippendorff_alpha_hand_computed() -> None:
    # Two raters, three units: (1,1), (2,3), (3,3). Values 1,1,2,3,3,3: n=6, n_1=2, n_2=1, n_3=3.
    # Coincidences: o_11=2, o_23=o_32=1, o_33=2.
    # interval: sum o*d2 = 2*(3-2)^2 = 2; sum n_c n_k d2 = 2*(2*1*1 + 2*3*4 + 1*3*1) = 58;
    #           alpha = 1 - 5*2/58.
    # ordinal:  d_12 = (2+1) - (2+1)/2 = 1.5, d_13 = 6 - 2.5 = 3.5, d_23 = 4 - 2 = 2;
    #           sum o*d2 = 2*4 = 8; sum n n d2 = 2*(2*1*2.25 + 2*3*12.25 + 1*3*4) = 180; alpha = 1 - 5*8/180.
    data = [[1, 2, 3], [1, 3, 3]]
    assert krippendorff_alpha(data, "interval") == pytest.approx(1 - 10 / 58)
    assert krippendorff_alpha(data, "ordinal") == pytest.approx(1 - 40 / 180)
    # nominal: disagreeing pairs o_23 + o_32 = 2; sum n_c n_k [c!=k] = 36 - (4+1+9) = 22; alpha = 1 - 5*2/22.
    assert krippendorff_alpha(data, "nominal") == pytest.approx(1 - 10 / 22)
    # A unit rated once carries no pair and changes nothing; a rater's missing value likewise.
    assert krippendorff_alpha([[1, 2, 3, 5], [1, 3, 3, None]], "interval") == pytest.approx(1 - 10 / 58)
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 observers x 12 units, missing data:
    # published alpha nominal 0.743, ordinal 0.815, interval 0.849.
    n = None
    k11 = [[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
           [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]]
    assert round(krippendorff_alpha(k11, "nominal"), 3) == 0.743
    assert round(krippendorff_alpha(k11, "ordinal"), 3) == 0.815
    assert round(krippendorff_alpha(k11, "interval"), 3) == 0.849
    assert krippendorff_alpha([[1, 2], [1, 2]], "ordinal") == 1.0
    assert math.isnan(krippendorff_alpha([[3, 3], [3, 3]]))  # no variation: undefined
    assert math.isnan(krippendorff_alpha([[1, 2, 3]]))  # one rater: no pairs


def test_mos_is_the_student_t_interval() -> None:
    v = np.array([5, 4, 4, 3, 5, 4, 2, 5, 4, 4], float)
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    m = mos(v)
    assert m.mean == pytest.approx(4.0) and m.n == 10 and m.half == pytest.approx((hi - lo) / 2)
    assert m.text == f"4.000 ± {(hi - lo) / 2:.3f}"
    assert mos(np.array([3.0])).text == "3.000 (n=1)" and mos(np.array([])).n == 0


def test_williams_square_is_balanced() -> None:
    for k in (2, 3, 4, 5, 7):
        rows = williams_square(k)
        assert all(sorted(r) == list(range(k)) for r in rows)
        for col in zip(*rows):  # each condition equally often in each position
            assert set(Counter(col).values()) == {len(rows) // k}
        pairs = Counter((r[i], r[i + 1]) for r in rows for i in range(k - 1))
        assert len(pairs) == k * (k - 1) and len(set(pairs.values())) == 1  # every ordered neighbour pair, equally


def test_participant_orders_are_complete_seeded_and_counterbalanced() -> None:
    n_samples, k, checks = 9, 4, 2
    rows = len(williams_square(k))
    orders = [participant_order(n_samples, k, checks, p, seed=5) for p in range(rows)]
    for o in orders:
        videos = [(a, b) for kind, a, b in o if kind == "video"]
        assert sorted(videos) == [(s, m) for s in range(n_samples) for m in range(k)]  # everything once
        assert sorted(a for kind, a, _ in o if kind == "check") == [0, 1] and o[0][0] == "video"
        for r in range(n_samples):  # each round: every method once, on different samples
            rnd = videos[r * k:(r + 1) * k]
            assert sorted(m for _, m in rnd) == list(range(k)) and len({s for s, _ in rnd}) == k
    for r in range(n_samples):  # across a block of participants: each method in each position of a round once
        for pos in range(k):
            methods = [[b for kind, _, b in o if kind == "video"][r * k + pos] for o in orders]
            assert sorted(methods) == list(range(k))
    for o in orders:  # the k showings of a sample are spread out: at least n // k rounds apart
        rounds = {}
        for i, (s, _) in enumerate([(a, b) for kind, a, b in o if kind == "video"]):
            rounds.setdefault(s, []).append(i // k)
        assert all(min(np.diff(sorted(r))) >= n_samples // k for r in rounds.values())
    assert participant_order(n_samples, k, checks, 1, seed=5) == orders[1]
    assert participant_order(n_samples, k, checks, 1, seed=6) != orders[1]
    assert orders[0] != orders[1]


# ----------------------------------------------------------------------------------------------- create
def test_create_picks_the_same_seeded_samples_for_every_method(runs: tuple[Path, Path], study_template: Path,
                                                               tmp_path: Path) -> None:
    study = load_study(study_template)
    d = json.loads((study_template / "study.json").read_text())
    assert study.datasets == ("synth-hdtf", "synth-lrs2") and len(study.samples) == 4
    lrs2 = [s.sample_id for s in study.samples if s.dataset == "synth-lrs2"]
    assert sorted(lrs2) == ["spk0/00000", "spk2/00002"]  # spk1 has no static video: never picked
    for s in range(4):
        assert sorted(v.method for v in study.videos if v.sample == s) == sorted(METHODS)
    # Files and tokens are opaque; copies carry no tag naming a method; bytes match the recorded sha256.
    for v in (*study.videos, *study.checks):
        path = study_template / v.file
        assert path.is_file() and not any(m in v.file or m in v.token for m in METHODS)
        with av.open(str(path)) as c:
            tags = json.dumps([dict(c.metadata), *[dict(s.metadata) for s in c.streams]]).lower()
            assert not re.search(r"\b(gt|static|wav2lip)\b", tags), tags
            assert {s.type for s in c.streams} == {"video", "audio"}
    assert {c["answer"] for c in d["attention_checks"]} <= {1, 2, 3, 4, 5}
    assert (study_template / "admin-token").stat().st_mode & 0o077 == 0
    # Same seed, same samples; another seed may differ, the design stays complete.
    res = CliRunner().invoke(cli, ["study", "create", "--runs", f"{runs[0]},{runs[1]}", "--methods", ",".join(METHODS),
                                   "--per-dataset", "2", "--out", str(tmp_path / "again"), "--seed", "3"])
    assert res.exit_code == 0, res.output
    again = load_study(tmp_path / "again")
    assert again.samples == study.samples and again.order(0) != study.order(0)  # new tokens, same design
    assert [(study.by_token[t].__class__, getattr(study.by_token[t], "method", None)) for t in study.order(1)] == \
        [(again.by_token[t].__class__, getattr(again.by_token[t], "method", None)) for t in again.order(1)]


@pytest.mark.parametrize("args, message", [
    (["--per-dataset", "3"], "synth-lrs2: only 2 sample(s) have a video from every method"),
    (["--methods", "gt,cals"], "method(s) cals not in this run"),
    (["--runs", "NOWHERE"], "not a talkbench run directory"),
])
def test_create_bad_input_is_a_clear_error(runs: tuple[Path, Path], tmp_path: Path, args: list[str],
                                           message: str) -> None:
    base = {"--runs": f"{runs[0]},{runs[1]}", "--methods": ",".join(METHODS), "--per-dataset": "2"}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    argv = ["study", "create", "--out", str(tmp_path / "S")] + [x for kv in base.items() for x in kv]
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code != 0 and message in str(res.exception) + res.output
    assert not (tmp_path / "S" / "study.json").exists()


def test_create_refuses_a_non_empty_folder(runs: tuple[Path, Path], study_template: Path) -> None:
    res = CliRunner().invoke(cli, ["study", "create", "--runs", str(runs[0]), "--methods", "gt",
                                   "--per-dataset", "1", "--out", str(study_template)])
    assert res.exit_code == 2 and "not empty" in res.output


# ----------------------------------------------------------------------------------------------- server
def _client(study_dir: Path):
    from talkbench.study.server import make_app

    return make_app(study_dir).test_client()


def _enrol(client) -> dict:
    assert client.post("/api/consent", json={"consent": True}).status_code == 200
    return client.get("/api/next").get_json()


def _rate(client, nxt: dict, values: tuple[int, int, int] = (3, 3, 3), **extra):
    body = {"item": nxt["item"], "ticket": nxt["ticket"], **dict(zip(KEYS, values)), **extra}
    return client.post("/api/rate", json=body)


def _rows(study_dir: Path) -> int:
    import sqlite3

    with sqlite3.connect(study_dir / "ratings.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]


def test_consent_session_and_video_access(study_dir: Path) -> None:
    c = _client(study_dir)
    assert c.get("/api/next").get_json() == {"consent_needed": True}
    assert c.post("/api/consent", json={"consent": False}).status_code == 400
    assert c.get("/").status_code == 200 and c.get("/app.js").status_code == 200
    first = load_study(study_dir).order(0)[0]
    assert c.get(f"/v/{first}").status_code == 401  # no session, no video
    nxt = _enrol(c)
    assert nxt["item"] == first and nxt["position"] == 0 and nxt["total"] == 14
    v = c.get(nxt["video"])
    assert v.status_code == 200 and v.mimetype == "video/mp4"
    assert v.data == (study_dir / load_study(study_dir).by_token[first].file).read_bytes()
    part = c.get(nxt["video"], headers={"Range": "bytes=0-99"})  # browsers seek with ranges
    assert part.status_code == 206 and len(part.data) == 100
    assert c.get("/v/not-a-token").status_code == 404
    # A reload (consent again with the cookie) keeps the same participant and position.
    assert c.post("/api/consent", json={"consent": True}).get_json() == {"participant": 1}
    assert c.get("/api/next").get_json()["item"] == first
    headers = c.get("/").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
    cookie = c.post("/api/consent", json={"consent": True}).headers.get("Set-Cookie")
    assert cookie is None  # no second cookie for a known participant


@pytest.mark.parametrize("values", [(0, 3, 3), (3, 6, 3), (3, "4", 3), (3, 3.5, 3), (True, 3, 3), (3, None, 3),
                                    (3, -1, 3), ("", 3, 3)])
def test_bad_ratings_are_refused_and_nothing_stored(study_dir: Path, values: tuple) -> None:
    c = _client(study_dir)
    nxt = _enrol(c)
    res = _rate(c, nxt, values)
    assert res.status_code == 400 and "must be an integer from 1 to 5" in res.get_json()["error"]
    assert _rows(study_dir) == 0
    assert _rate(c, nxt).status_code == 200 and _rows(study_dir) == 1  # the same video, rated properly


def test_missing_field_unknown_video_and_malformed_bodies(study_dir: Path) -> None:
    c = _client(study_dir)
    nxt = _enrol(c)
    body = {"item": nxt["item"], "ticket": nxt["ticket"], "visual_quality": 3, "lip_sync": 3}
    assert c.post("/api/rate", json=body).status_code == 400  # realness missing
    res = _rate(c, {**nxt, "item": "made-up-id"})
    assert res.status_code == 404 and "unknown video id" in res.get_json()["error"]
    assert c.post("/api/rate", data="visual_quality=3", content_type="application/x-www-form-urlencoded"
                  ).status_code == 415
    assert c.post("/api/rate", data="[1, 2", content_type="application/json").status_code == 400
    assert c.post("/api/rate", json=[1, 2]).status_code == 400
    assert c.post("/api/rate", data="x" * 10_000, content_type="application/json").status_code == 413
    res = _rate(c, nxt, participant="someone-else")
    assert res.status_code == 400 and "unexpected field(s): participant" in res.get_json()["error"]
    res = c.post(
        "/api/rate", json={"item": nxt["item"], "ticket": nxt["ticket"], **dict(zip(KEYS, (3, 3, 3)))},
        headers={"Origin": "http://evil.example"})
    assert res.status_code == 403
    assert _rows(study_dir) == 0


def test_replayed_and_forged_submissions(study_dir: Path) -> None:
    a, b = _client(study_dir), _client(study_dir)
    na, nb = _enrol(a), _enrol(b)
    assert _rate(a, na, (4, 4, 4)).status_code == 200
    replay = _rate(a, na, (1, 1, 1))
    assert replay.status_code == 409 and "already rated" in replay.get_json()["error"]
    # B submits A's ticket (for another participant), or a made-up ticket: refused.
    forged = _rate(b, {**nb, "ticket": na["ticket"], "item": na["item"]})
    assert forged.status_code == 403 and "does not belong" in forged.get_json()["error"]
    assert _rate(b, {**nb, "ticket": "0" * 64}).status_code == 403
    assert _rate(b, {**nb, "ticket": 12}).status_code == 403
    # A genuine ticket for a later video of B's (minted here with the study's secret): out of order, refused.
    import hashlib
    import hmac

    secret = bytes.fromhex((study_dir / ".secret").read_text().strip())
    pid = hashlib.sha256(b.get_cookie("tb_participant").value.encode()).hexdigest()
    later = load_study(study_dir).order(1)[3]
    ticket = hmac.new(secret, f"{pid}:{later}".encode(), hashlib.sha256).hexdigest()
    skipped = _rate(b, {"item": later, "ticket": ticket})
    assert skipped.status_code == 409 and "not the participant's current video" in skipped.get_json()["error"]
    # Without a session there is nobody to rate for.
    anon = _client(study_dir)
    assert _rate(anon, na).status_code == 401
    assert _rows(study_dir) == 1
    import sqlite3

    with sqlite3.connect(study_dir / "ratings.sqlite") as conn:
        assert conn.execute(f"SELECT {', '.join(KEYS)} FROM ratings").fetchall() == [(4, 4, 4)]


def _serve(study_dir: Path, wrap=None):
    """A real waitress server on a free port in a thread; returns (base_url, stop)."""
    from waitress import create_server

    from talkbench.study.server import make_app

    app = make_app(study_dir)
    if wrap is not None:
        app.wsgi_app = wrap(app.wsgi_app)
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except (OSError, ValueError):  # the loop's sockets closed under it by stop()
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        server.close()
        thread.join(timeout=10)

    return f"http://127.0.0.1:{server.effective_port}", stop


def _http(url: str, body: dict | None = None, cookie: str | None = None) -> tuple[int, dict, str | None]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **({"Cookie": cookie} if cookie else {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read()), r.headers.get("Set-Cookie")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), None


def test_concurrent_submissions_store_exactly_once(study_dir: Path) -> None:
    base, stop = _serve(study_dir)
    try:
        # Two sessions of one participant (same cookie) racing on the same video: one wins, nothing twice.
        status, _, set_cookie = _http(base + "/api/consent", {"consent": True})
        cookie = set_cookie.split(";")[0]
        _, nxt, _ = _http(base + "/api/next", cookie=cookie)
        body = {"item": nxt["item"], "ticket": nxt["ticket"], **dict(zip(KEYS, (2, 2, 2)))}
        with ThreadPoolExecutor(8) as ex:
            codes = sorted(ex.map(lambda _: _http(base + "/api/rate", body, cookie)[0], range(8)))
        assert codes == [200] + [409] * 7
        # Eight participants enrolling and rating at once: eight distinct numbers, eight rows.
        def one(_: int) -> tuple[int, int]:
            _, d, sc = _http(base + "/api/consent", {"consent": True})
            ck = sc.split(";")[0]
            _, n, _ = _http(base + "/api/next", cookie=ck)
            code = _http(base + "/api/rate", {"item": n["item"], "ticket": n["ticket"],
                                              **dict(zip(KEYS, (5, 5, 5)))}, ck)[0]
            return d["participant"], code
        with ThreadPoolExecutor(8) as ex:
            results = list(ex.map(one, range(8)))
        assert sorted(p for p, _ in results) == list(range(2, 10)) and {c for _, c in results} == {200}
        assert _rows(study_dir) == 9
    finally:
        stop()


def test_admin_page_needs_the_token(study_dir: Path) -> None:
    c = _client(study_dir)
    token = (study_dir / "admin-token").read_text().strip()
    assert c.get("/admin").status_code == 403
    assert c.get("/admin?token=wrong").status_code == 403
    assert c.get("/admin/status.json", headers={"Authorization": "Bearer nope"}).status_code == 403
    nxt = _enrol(c)
    _rate(c, nxt)
    s = c.get("/admin/status.json", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert s["enrolled"] == 1 and s["ratings"] == 1 and s["participants"][0]["rated"] == 1
    page = c.get(f"/admin?token={token}")
    assert page.status_code == 200 and "1 / 14" in page.get_data(as_text=True)


def test_deleted_videos_are_a_clear_error(study_dir: Path) -> None:
    study = load_study(study_dir)
    c = _client(study_dir)
    nxt = _enrol(c)
    (study_dir / study.by_token[nxt["item"]].file).unlink()  # deleted while serving
    res = c.get(nxt["video"])
    assert res.status_code == 410 and "missing on the server" in res.get_json()["error"]
    res = CliRunner().invoke(cli, ["study", "serve", str(study_dir), "--port", "1"])  # refuses before binding
    assert res.exit_code == 2
    assert "1 study video(s) missing" in res.output and study.by_token[nxt["item"]].file in res.output
    (study_dir / "study.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable study definition"):
        load_study(study_dir)
    (study_dir / "study.json").write_text('{"format": "something-else"}')
    with pytest.raises(ConfigError, match="not a talkbench study definition"):
        load_study(study_dir)
    (study_dir / "study.json").unlink()
    res = CliRunner().invoke(cli, ["study", "report", str(study_dir)])
    assert res.exit_code == 2 and "not a study directory" in res.output


# ----------------------------------------------------------------------------------------------- report
def _complete(client, study, rating) -> list[tuple[str, tuple[int, int, int]]]:
    """Rate every video of a session with ``rating(entry) -> (v, l, r)``; returns what was given."""
    given = []
    while True:
        nxt = client.get("/api/next").get_json()
        if nxt["done"]:
            return given
        values = rating(study.by_token[nxt["item"]], nxt)
        assert _rate(client, nxt, values).status_code == 200
        given.append((nxt["item"], values))


def test_report_mos_agreement_and_exclusion(study_dir: Path) -> None:
    study = load_study(study_dir)
    base = {"gt": 5, "static": 1, "wav2lip": 3}
    given: dict[int, list] = {}
    for p, noise in enumerate((0, 1, -1)):
        c = _client(study_dir)
        _enrol(c)

        def rating(entry, nxt, p=p, noise=noise):
            if nxt["check"] is not None:  # participant 3 ignores the instruction
                return (nxt["check"],) * 3 if p != 2 else ((nxt["check"] % 5) + 1,) * 3
            v = int(np.clip(base[entry.method] + noise * (entry.sample % 2), 1, 5))
            return (v, v, max(1, v - 1))

        given[p] = _complete(c, study, rating)
    res = CliRunner().invoke(cli, ["study", "report", str(study_dir)])
    assert res.exit_code == 0, res.output
    # Independent expectation: participants 1 and 2 (3 failed its checks), mean and t interval by hand.
    md = (study_dir / "report" / "table.md").read_text()
    parts = re.split(r"\n\*\*synth-\w+\*\*\n", md)
    assert len(parts) == 3
    sections = dict(zip(["all", "synth-hdtf", "synth-lrs2"], parts))

    def dataset_of(entry) -> str:
        return study.samples[entry.sample].dataset

    for section, text_md in sections.items():
        for m in METHODS:
            vals = [v for p in (0, 1) for item, v in given[p] if getattr(study.by_token[item], "method", None) == m
                    and section in ("all", dataset_of(study.by_token[item]))]
            row = next(line for line in text_md.splitlines()
                       if line.startswith(f"| {'Ground Truth' if m == 'gt' else m} |"))
            for k, key in enumerate(KEYS):
                x = np.array([v[k] for v in vals], float)
                half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
                text = f"{x.mean():.3f} ± {half:.3f}"
                assert text in row, (section, m, key, text, row)
    assert md.splitlines()[0] == "| Method | Visual Quality ↑ | Lip-Sync Quality ↑ | Realness ↑ |"
    assert "**synth-hdtf**" in md and "**synth-lrs2**" in md and "Krippendorff's alpha" in md
    assert "| wav2lip | **" in md  # best generated method in bold (gt is the reference)
    html = (study_dir / "report" / "index.html").read_text()
    assert "failed 2 attention check(s) (allowed: 0)" in html and '<table id="mos">' in html
    tex = (study_dir / "report" / "table.tex").read_text()
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex
    tidy = (study_dir / "report" / "ratings.csv").read_text().splitlines()
    assert len(tidy) == 1 + 2 * 12  # two included participants x 12 videos (checks apart)
    # Alpha of the included ratings: the same table fed to the estimator by hand.
    import pandas as pd

    wide = pd.DataFrame([(p, item, v[0]) for p in (0, 1) for item, v in given[p]
                         if item in {x.token for x in study.videos}], columns=["p", "item", "v"]).pivot(
        index="p", columns="item", values="v")
    assert f"| Visual Quality | {krippendorff_alpha(wide.to_numpy(float), 'ordinal'):.3f} |" in md
    # --complete-only changes nothing here (both included participants finished); no ratings is an error.
    assert CliRunner().invoke(cli, ["study", "report", str(study_dir), "--complete-only"]).exit_code == 0
    (study_dir / "ratings.sqlite").unlink()
    for extra in ("-wal", "-shm"):
        (study_dir / f"ratings.sqlite{extra}").unlink(missing_ok=True)
    with pytest.raises(ConfigError, match="no ratings yet"):
        build_study_report(study_dir)


# ----------------------------------------------------------------------------------------------- browser
def _chrome():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("chromium / chromium-driver not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(driver), options=opts)


class _Recorder:
    """WSGI middleware keeping everything the server sent: URL, status, headers and body."""

    def __init__(self, app) -> None:
        self.app, self.seen = app, []

    def __call__(self, environ, start_response):
        box = []

        def sr(status, headers, exc_info=None):
            box.append((status, headers))
            return start_response(status, headers, exc_info)

        it = self.app(environ, sr)
        try:
            body = b"".join(it)
        finally:
            if hasattr(it, "close"):
                it.close()
        self.seen.append((environ["PATH_INFO"] + "?" + environ.get("QUERY_STRING", ""), box, body))
        return [body]


@pytest.mark.browser
def test_scripted_participant_in_headless_chromium(runs: tuple[Path, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from talkbench.study import StudyConfig, create_study

    # 2 samples (one per dataset) x 3 methods + 1 attention check: 7 videos, a reload after the 3rd.
    study_dir = tmp_path / "S"
    create_study(StudyConfig(runs=tuple(map(str, runs)), methods=METHODS, per_dataset=1, attention_checks=1,
                             seed=1), study_dir)

    recorder: list[_Recorder] = []

    def wrap(app):
        recorder.append(_Recorder(app))
        return recorder[0]

    driver = _chrome()
    base, stop = _serve(study_dir, wrap)
    study = load_study(study_dir)
    want = {"gt": (5, 4, 5), "static": (1, 2, 1), "wav2lip": (3, 4, 2)}
    try:
        wait = WebDriverWait(driver, 30, poll_frequency=0.05)
        driver.get(base + "/")
        wait.until(lambda d: d.find_element(By.ID, "consent").is_displayed())
        start = driver.find_element(By.ID, "start")
        assert not start.is_enabled()
        driver.find_element(By.ID, "agree").click()
        start.click()
        def rate_here(values: tuple[int, ...]) -> None:
            for key, v in zip(KEYS, values):
                driver.find_element(By.ID, f"r-{key}-{v}").click()
            driver.find_element(By.ID, "submit").click()

        total = 7
        for i in range(total):
            wait.until(lambda d, i=i: d.find_element(By.ID, "position").text == f"Video {i + 1} of {total}")
            # The page enables rating only once the video has played to the end, sound and picture decoded.
            wait.until(lambda d: d.find_element(By.ID, "submit").is_enabled())
            played = driver.execute_script(
                "const v = document.getElementById('video'); return [v.ended, v.webkitAudioDecodedByteCount, "
                "v.webkitVideoDecodedByteCount, v.src];")
            assert played[0] and played[1] > 0 and played[2] > 0, played
            token = played[3].rsplit("/", 1)[1]
            entry = study.by_token[token]
            check = driver.find_element(By.ID, "check")
            values = (int(re.search(r"answer (\d)", check.text).group(1)),) * 3 if check.is_displayed() \
                else want[entry.method]
            assert check.is_displayed() == (not hasattr(entry, "method"))
            if i == 4:  # a second tab of the same participant rates this video first; this tab's submission
                first = driver.current_window_handle  # then finds it stored (409) and moves on likewise
                driver.switch_to.new_window("tab")
                driver.get(base + "/")
                wait.until(lambda d, i=i: d.find_element(By.ID, "position").text == f"Video {i + 1} of {total}")
                wait.until(lambda d: d.find_element(By.ID, "submit").is_enabled())
                rate_here(values)
                wait.until(lambda d, i=i: d.find_element(By.ID, "position").text == f"Video {i + 2} of {total}")
                driver.close()
                driver.switch_to.window(first)
            rate_here(values)
            if i == 2:  # half-way: reload; the study resumes at the next video, nothing lost
                wait.until(lambda d: d.find_element(By.ID, "position").text == "Video 4 of 7")
                driver.refresh()
        wait.until(lambda d: d.find_element(By.ID, "done").is_displayed())
        assert "You rated all 7 videos" in driver.find_element(By.ID, "done-text").text
        page_source = driver.page_source
        logs = driver.get_log("browser")
        # The report of this one participant shows exactly the ratings given (read in the browser).
        driver.get(build_study_report(study_dir).as_uri())
        table = driver.execute_script("return [...document.querySelectorAll('#mos tbody tr')].map("
                                      "r => [...r.cells].map(c => c.textContent.trim()));")
    finally:
        driver.quit()
        stop()
    # No script errors; the one failed request is the second tab's refused duplicate.
    severe = [e["message"] for e in logs if e["level"] == "SEVERE"]
    assert all("/api/rate" in m and "409" in m for m in severe), severe
    rated = [box[0][0] for url, box, _ in recorder[0].seen if url.startswith("/api/rate")]
    assert sorted(rated) == ["200 OK"] * 7 + ["409 CONFLICT"], rated
    assert _rows(study_dir) == 7
    # Nothing the browser received names a method: not the URLs, headers, page, script, JSON, or videos.
    names = re.compile(r"(?<![a-z0-9])(gt|static|wav2lip)(?![a-z0-9])", re.I)
    seen = recorder[0].seen
    assert len(seen) > 15 and sum(url.startswith("/v/") for url, _, _ in seen) >= 7
    for url, box, body in seen:
        headers = json.dumps(box)
        assert not names.search(url) and not names.search(headers), (url, headers)
        if url.startswith("/v/"):
            data = (study_dir / study.by_token[url[3:].split("?")[0]].file).read_bytes()
            ranged = [v for k, v in box[0][1] if k == "Content-Range"]
            start = int(ranged[0].split()[1].split("-")[0]) if ranged else 0
            assert body == data[start:start + len(body)] and len(body) > 0
            assert b"wav2lip" not in body.lower() and b"static" not in body.lower()
        else:
            assert not names.search(body.decode("utf-8")), (url, names.search(body.decode("utf-8")))
    assert not names.search(page_source)
    assert table == [["Ground Truth" if m == "gt" else m, *(f"{x:.3f} ± 0.000" for x in want[m])] for m in METHODS]


def test_serve_command_binds_localhost_by_default(study_dir: Path) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from talkbench.study.server import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "talkbench.cli", "study", "serve", str(study_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert first.strip() == f"participants: http://127.0.0.1:{port}/", first
        token = (study_dir / "admin-token").read_text().strip()
        assert proc.stdout.readline().strip() == f"admin:        http://127.0.0.1:{port}/admin?token={token}"
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    assert r.status == 200 and "<h1>Talking-face video study</h1>" in r.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not answer")
        # Listening on loopback only: the port is not open on the machine's other addresses.
        if Path("/proc/net/tcp").exists():  # Linux: local address of the listening socket (state 0A)
            rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
            listening = [r[1] for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == port]
            assert listening == [f"0100007F:{port:04X}"], listening
    finally:
        proc.terminate()
        proc.wait(timeout=10)
