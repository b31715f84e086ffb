"""Critic provenance as people read it: one line per critic file (metric, file, sha256 prefix, training
domain), the full record kept for a disclosure. Used by the run report and the paper page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def critic_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One readable line per critic file (role, file, sha256 prefix, training domain) with the full
    record kept for a disclosure."""
    seen: dict[str, dict[str, Any]] = {}
    for rec in records:
        for scorer, prov in (rec.get("critics") or {}).items():
            for role, w in prov.items():
                if not isinstance(w, dict) or "sha256" not in w:
                    continue
                card = w.get("card") or {}
                data = card.get("data") or {}
                note = str(card.get("note", ""))
                synthetic = "synthetic" in note or str(data.get("dataset", "")).startswith("synth-")
                domain = (f"synthetic corpus ({data.get('dataset')})" if synthetic
                          else (f"{data.get('dataset')}" if data.get("dataset") else "official release"))
                name = Path(w.get("path") or w.get("file") or "?").name
                seen.setdefault(w["sha256"], {"metric": scorer, "role": role, "file": name, "sha": w["sha256"][:12],
                                              "domain": domain, "synthetic": synthetic,
                                              "full": json.dumps(prov, indent=2, default=str)})
    return list(seen.values())
