"""Which domain a critic was trained on, and the refusal of a synthetic critic on real faces.

The shipped critics (``syncnet-synth``, ``lipreader-synth``) were trained on the synthetic corpus; their
cards say so (``data.dataset`` starts with ``synth``). On real clips they measured nonsense that looked
like numbers (``static`` beat the ground truth on LSE-D, the ground truth's offset was never near 0), so
a run on a dataset that is not synthetic refuses such a metric unless the user allows it explicitly
(``--allow-synthetic-critics``), and then every output says so next to the numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The official file each critic role stands for, and what a user provides instead of the synthetic one.
OFFICIAL_FILES = {"syncnet": "syncnet_v2.model", "lipreader": "lrw_resnet18_mstcn.pth"}
ROLE_OPTION = {"syncnet": "--syncnet", "lipreader": "--lipreader"}


def synthetic_critics(provenance: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The critic records in a scorer's ``provenance()`` whose card says they were trained on the
    synthetic corpus, by role (``syncnet``, ``lipreader``)."""
    out = {}
    for role, rec in (provenance or {}).items():
        if not isinstance(rec, dict) or "sha256" not in rec:
            continue
        data = (rec.get("card") or {}).get("data") or {}
        if str(data.get("dataset", "")).startswith("synth"):
            out[role] = rec
    return out


def is_synthetic_dataset(name: str, root: str | Path | None = None) -> bool:
    """A ``synth-*`` dataset, or any reader pointed at a folder holding the synthetic corpus's manifest."""
    if name.startswith("synth"):
        return True
    return bool(root) and (Path(root) / "CORPUS.json").exists()


def critic_file(rec: dict[str, Any]) -> str:
    return Path(rec.get("path") or rec.get("file") or "?").name


def refusal(metric: str, provenance: dict[str, Any], dataset: str) -> str | None:
    """Why ``metric`` is not scored on the non-synthetic ``dataset`` (None when its critics are not
    synthetic): names the official file to provide and where."""
    from talkbench.weights import weight_dirs

    synth = synthetic_critics(provenance)
    if not synth:
        return None
    role, rec = next(iter(synth.items()))
    official = OFFICIAL_FILES.get(role, "the official weights")
    where = " or ".join(str(d) for d in weight_dirs())
    return (f"refused on {dataset}: the only {role} critic found is {critic_file(rec)}, trained on the synthetic "
            f"corpus ({(rec.get('card') or {}).get('data', {}).get('dataset')}); its numbers on real faces are not "
            f"meaningful. Put the official {official} in $TALKBENCH_WEIGHTS (looked for in: {where}), or pass "
            f"--allow-synthetic-critics to score with it anyway (every output then says so)")


def synthetic_label(metric: str, provenance: dict[str, Any], dataset: str | None = None) -> str | None:
    """The plain-words warning printed next to numbers from a synthetic critic (None otherwise)."""
    synth = synthetic_critics(provenance)
    if not synth:
        return None
    names = ", ".join(critic_file(r) for r in synth.values())
    on = f" on {dataset}" if dataset else ""
    return (f"{metric}: scored{on} by {names}, a critic trained on the SYNTHETIC corpus: not comparable with "
            f"published values or with numbers from the official critic, and unreliable on real faces")
