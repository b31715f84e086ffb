"""The study definition (``STUDY/study.json``): which videos, whose method, in what order.

The file stays on the server: it maps every opaque token to its method, dataset and sample. Only the
tokens ever reach a participant. Videos live in ``STUDY/videos/<random name>.mp4``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from talkbench.errors import ConfigError
from talkbench.study.design import participant_order

FORMAT = "talkbench-study"
VERSION = 1


@dataclass(frozen=True)
class Criterion:
    key: str  # column name in ratings.sqlite
    label: str  # table header (the paper's Table 2)
    question: str  # what the participant is asked


CRITERIA = (
    Criterion("visual_quality", "Visual Quality", "Visual quality: how sharp and clean is the face (artefacts, blur)?"),
    Criterion("lip_sync", "Lip-Sync Quality", "Lip sync: how well do the lip movements match the speech?"),
    Criterion("realness", "Realness", "Realness: how much does this look like a real recording of a person?"),
)
SCALE = (1, 5)
SCALE_LABELS = {1: "bad", 2: "poor", 3: "fair", 4: "good", 5: "excellent"}  # ITU-T P.800 ACR wording


@dataclass(frozen=True)
class Video:
    token: str  # opaque id the participant sees
    file: str  # path relative to the study directory
    method: str
    sample: int  # index into Study.samples
    sha256: str
    seconds: float


@dataclass(frozen=True)
class Check:
    """An instructed-response attention check: the page asks for ``answer`` on every criterion."""

    token: str
    file: str
    answer: int
    sha256: str
    seconds: float


@dataclass(frozen=True)
class Sample:
    dataset: str
    sample_id: str
    run: str


@dataclass(frozen=True)
class Study:
    path: Path
    title: str
    seed: int
    methods: tuple[str, ...]
    datasets: tuple[str, ...]
    samples: tuple[Sample, ...]
    videos: tuple[Video, ...]
    checks: tuple[Check, ...]
    participants: int  # planned; more may take part (orders continue the same design)
    max_attention_failures: int
    require_watch: bool
    record: dict

    @cached_property
    def by_token(self) -> dict[str, Video | Check]:
        return {**{v.token: v for v in self.videos}, **{c.token: c for c in self.checks}}

    @cached_property
    def _grid(self) -> dict[tuple[int, int], str]:
        index = {m: i for i, m in enumerate(self.methods)}
        return {(v.sample, index[v.method]): v.token for v in self.videos}

    def order(self, participant: int) -> list[str]:
        """Tokens in the order participant ``participant`` (0-based) sees them."""
        out = []
        for kind, a, b in participant_order(len(self.samples), len(self.methods), len(self.checks), participant,
                                            self.seed):
            out.append(self._grid[(a, b)] if kind == "video" else self.checks[a].token)
        return out

    def missing_files(self) -> list[str]:
        return [x.file for x in (*self.videos, *self.checks) if not (self.path / x.file).is_file()]


def load_study(study_dir: str | Path) -> Study:
    """Read and validate ``STUDY/study.json`` (ConfigError naming the file and the problem)."""
    study_dir = Path(study_dir)
    path = study_dir / "study.json"
    if not path.is_file():
        raise ConfigError("not a study directory (study.json missing; make one with `talkbench study create`)",
                          study_dir)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"unreadable study definition ({exc})", path) from exc
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ConfigError(f"not a talkbench study definition (format != {FORMAT!r})", path)
    if d.get("version") != VERSION:
        raise ConfigError(f"study format version {d.get('version')!r}; this talkbench reads version {VERSION}", path)
    try:
        methods = tuple(d["methods"])
        samples = tuple(Sample(**s) for s in d["samples"])
        videos = tuple(Video(**v) for v in d["videos"])
        checks = tuple(Check(**c) for c in d["attention_checks"])
        study = Study(path=study_dir, title=str(d["title"]), seed=int(d["seed"]), methods=methods,
                      datasets=tuple(d["datasets"]), samples=samples, videos=videos, checks=checks,
                      participants=int(d["participants"]), max_attention_failures=int(d["max_attention_failures"]),
                      require_watch=bool(d["require_watch"]), record=d)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed study definition ({type(exc).__name__}: {exc})", path) from exc
    grid = {(v.sample, v.method) for v in videos}
    if len(grid) != len(videos) or len(grid) != len(samples) * len(methods) or any(
            v.method not in methods or not 0 <= v.sample < len(samples) for v in videos):
        raise ConfigError("malformed study definition: videos must be exactly one per (sample, method)", path)
    if len(study.by_token) != len(videos) + len(checks):
        raise ConfigError("malformed study definition: video tokens are not unique", path)
    if any(not SCALE[0] <= c.answer <= SCALE[1] for c in checks):
        raise ConfigError(f"malformed study definition: attention-check answers must be in {SCALE}", path)
    return study
