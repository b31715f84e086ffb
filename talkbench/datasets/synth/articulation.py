"""Articulatory targets per English phoneme and Cohen & Massaro (1993) coarticulation.

Parameters (all in [0, 1] except ``spread`` in [-1, 1]):
``jaw`` opening, ``spread`` (lip width: + spread, - rounded), ``round`` (protrusion), ``closure``
(lip contact: p/b/m), ``labiodental`` (lower lip to upper teeth: f/v), ``teeth`` and ``tongue``
visibility.

Each segment s has a target T_s and, per parameter, a dominance
``D_s(t) = a_s * exp(-theta * |t - c_s|^c)`` (theta_ant before the centre c_s, theta_car after it);
the trajectory is ``F(t) = sum_s D_s(t) T_s / sum_s D_s(t)``. Segments whose dominance for a parameter
is low (e.g. /t/ for rounding) take that parameter from their neighbours: anticipatory and carry-over
coarticulation. Word-final alveolars assimilate in place to a following bilabial or velar
("that boy" -> the /t/ closes the lips, the CALS paper's Fig. 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PARAMS = ("jaw", "spread", "round", "closure", "labiodental", "teeth", "tongue")

# espeak-ng (en) phoneme mnemonics -> (targets, dominance strength a per parameter group).
# Vowels: jaw/spread/round from their height/backness/rounding.
_V = {
    "i": (0.20, 0.8, 0.0), "i:": (0.20, 0.8, 0.0), "I": (0.30, 0.6, 0.0), "I2": (0.3, 0.5, 0.0), "e": (0.45, 0.5, 0.0),
    "E": (0.55, 0.45, 0.0), "a": (0.85, 0.35, 0.0), "a#": (0.8, 0.3, 0.0), "A:": (0.95, 0.1, 0.05), "A@": (0.9, 0.1, 0.05),
    "0": (0.75, -0.2, 0.45), "O:": (0.6, -0.5, 0.7), "O@": (0.6, -0.4, 0.6), "V": (0.65, 0.1, 0.0),
    "U": (0.35, -0.5, 0.7), "u:": (0.25, -0.8, 0.95), "3:": (0.45, -0.1, 0.3), "3": (0.4, 0.0, 0.2),
    "@": (0.40, 0.1, 0.0), "@2": (0.4, 0.1, 0.0), "@5": (0.35, 0.0, 0.1), "@L": (0.4, 0.0, 0.0),
    "eI": (0.5, 0.55, 0.0), "aI": (0.8, 0.4, 0.0), "OI": (0.6, -0.4, 0.6), "aU": (0.85, -0.2, 0.4),
    "oU": (0.55, -0.5, 0.75), "e@": (0.5, 0.4, 0.0), "i@": (0.3, 0.5, 0.0), "U@": (0.4, -0.4, 0.6),
    "aI@": (0.75, 0.3, 0.0), "aU@": (0.8, -0.1, 0.3), "i@3": (0.3, 0.4, 0.0), "o@": (0.55, -0.4, 0.6),
}
# Consonants: (jaw, spread, round, closure, labiodental, teeth, tongue), and which parameters they
# control strongly (the rest follow neighbours).
_C = {
    "p": ((0.05, 0.0, 0.0, 1.0, 0, 0, 0), ("closure", "jaw")), "b": ((0.05, 0.0, 0.0, 1.0, 0, 0, 0), ("closure", "jaw")),
    "m": ((0.05, 0.0, 0.0, 1.0, 0, 0, 0), ("closure", "jaw")),
    "f": ((0.15, 0.1, 0.0, 0.0, 1.0, 0.8, 0), ("labiodental", "jaw", "teeth")),
    "v": ((0.15, 0.1, 0.0, 0.0, 1.0, 0.8, 0), ("labiodental", "jaw", "teeth")),
    "T": ((0.2, 0.2, 0.0, 0.0, 0, 0.8, 1.0), ("tongue", "teeth", "jaw")), "D": ((0.2, 0.2, 0.0, 0.0, 0, 0.8, 1.0), ("tongue", "teeth", "jaw")),
    "s": ((0.1, 0.5, 0.0, 0.0, 0, 1.0, 0), ("jaw", "teeth")), "z": ((0.1, 0.5, 0.0, 0.0, 0, 1.0, 0), ("jaw", "teeth")),
    "S": ((0.15, -0.4, 0.7, 0.0, 0, 0.9, 0), ("round", "spread", "jaw", "teeth")),
    "Z": ((0.15, -0.4, 0.7, 0.0, 0, 0.9, 0), ("round", "spread", "jaw", "teeth")),
    "tS": ((0.15, -0.3, 0.6, 0.0, 0, 0.9, 0), ("round", "jaw", "teeth")), "dZ": ((0.15, -0.3, 0.6, 0.0, 0, 0.9, 0), ("round", "jaw", "teeth")),
    "t": ((0.2, 0.2, 0.0, 0.0, 0, 0.6, 0.3), ("jaw",)), "d": ((0.2, 0.2, 0.0, 0.0, 0, 0.6, 0.3), ("jaw",)),
    "n": ((0.2, 0.2, 0.0, 0.0, 0, 0.5, 0.3), ("jaw",)), "l": ((0.3, 0.2, 0.0, 0.0, 0, 0.5, 0.6), ("tongue",)),
    "r": ((0.25, -0.3, 0.5, 0.0, 0, 0.2, 0), ("round",)), "w": ((0.15, -0.8, 0.95, 0.0, 0, 0, 0), ("round", "spread", "jaw")),
    "j": ((0.2, 0.6, 0.0, 0.0, 0, 0.5, 0), ("spread",)), "k": ((0.3, 0.1, 0.0, 0.0, 0, 0.3, 0), ()),
    "g": ((0.3, 0.1, 0.0, 0.0, 0, 0.3, 0), ()), "N": ((0.25, 0.1, 0.0, 0.0, 0, 0.3, 0), ()),
    "h": ((0.4, 0.1, 0.0, 0.0, 0, 0.2, 0), ()), "t#": ((0.2, 0.2, 0, 0, 0, 0.6, 0.3), ("jaw",)),
}
REST = np.array([0.05, 0.0, 0.0, 0.6, 0.0, 0.0, 0.0])  # mouth closed at rest
BILABIAL, VELAR, ALVEOLAR = {"p", "b", "m"}, {"k", "g"}, {"t", "d", "n"}


@dataclass(frozen=True)
class Segment:
    phone: str
    start: float
    end: float
    targets: np.ndarray  # (len(PARAMS),)
    dominance: np.ndarray  # (len(PARAMS),) strength a_s per parameter
    word_final: bool = False


def phone_targets(phone: str) -> tuple[np.ndarray, np.ndarray]:
    """(targets, dominance) for an espeak phoneme; silence returns the rest posture."""
    p = phone.strip()
    if p in _V:
        jaw, spread, rnd = _V[p]
        t = np.array([jaw, spread, rnd, 0.0, 0.0, 0.5 * (1 - rnd) * jaw, 0.0])
        # Vowels own jaw, spread and rounding; weakly the rest.
        return t, np.array([1.0, 0.9, 0.9, 0.3, 0.3, 0.5, 0.3])
    if p in _C:
        vals, strong = _C[p]
        dom = np.array([0.9 if k in strong else 0.08 for k in PARAMS])
        dom[PARAMS.index("closure")] = 1.0 if "closure" in strong else 0.5  # consonants open unless bilabial
        dom[PARAMS.index("labiodental")] = 1.0 if "labiodental" in strong else 0.5
        return np.array(vals, float), dom
    if p.startswith("_") or p == "":
        return REST.copy(), np.full(len(PARAMS), 0.6)
    # Unknown symbols (rare espeak variants): a neutral, weakly dominant segment.
    return np.array([0.35, 0.1, 0.0, 0.0, 0.0, 0.3, 0.0]), np.full(len(PARAMS), 0.2)


def assimilate(phones: Sequence[str], word_final: Sequence[bool]) -> list[str]:
    """Word-final /t d n/ take the place of a following bilabial or velar (English place assimilation)."""
    out = list(phones)
    for i in range(len(out) - 1):
        nxt = out[i + 1]
        if word_final[i] and out[i] in ALVEOLAR:
            if nxt in BILABIAL:
                out[i] = {"t": "p", "d": "b", "n": "m"}[out[i]]
            elif nxt in VELAR:
                out[i] = {"t": "k", "d": "g", "n": "N"}[out[i]]
    return out


def segments(phones: Sequence[tuple[str, float, float]], word_starts: Sequence[float] = ()) -> list[Segment]:
    """Segments with targets, after assimilation; zero-length phones (espeak folds some liquids into
    the vowel) get a nominal 30 ms so they still pull the trajectory. A phone is word-final when a
    later word starts between its start and the next phone's start (espeak's WORD events)."""
    names = [p for p, _, _ in phones]
    starts = [s for _, s, _ in phones]
    boundaries = [w for w in word_starts if w > 1e-6]
    finals = [
        i + 1 < len(starts) and any(starts[i] < w <= starts[i + 1] + 0.01 for w in boundaries)
        for i in range(len(starts))
    ]
    names = assimilate(names, finals)
    out = []
    for (_, s, e), name, fin in zip(phones, names, finals):
        if e - s < 0.03:
            s, e = s - 0.015, e + 0.015
        t, d = phone_targets(name)
        out.append(Segment(name, s, e, t, d, fin))
    return out


def trajectory(segs: Sequence[Segment], times: np.ndarray, theta_ant: float = 12.0, theta_car: float = 16.0,
               c: float = 1.0) -> np.ndarray:
    """Parameters ``(len(times), len(PARAMS))`` by dominance-weighted blending (Cohen & Massaro)."""
    if not segs:
        return np.tile(REST, (len(times), 1))
    centres = np.array([(s.start + s.end) / 2 for s in segs])
    half = np.array([max((s.end - s.start) / 2, 0.015) for s in segs])
    targets = np.stack([s.targets for s in segs])  # (S, P)
    alpha = np.stack([s.dominance for s in segs])  # (S, P)
    tau = times[None, :] - centres[:, None]  # (S, T): + after the centre
    # Inside its own segment a phone dominates fully; outside, dominance decays with distance.
    dist = np.maximum(np.abs(tau) - half[:, None], 0.0)
    theta = np.where(tau < 0, theta_ant, theta_car)
    decay = np.exp(-theta * dist**c)  # (S, T)
    dom = alpha[:, None, :] * decay[:, :, None]  # (S, T, P)
    return (dom * targets[:, None, :]).sum(0) / np.maximum(dom.sum(0), 1e-9)
