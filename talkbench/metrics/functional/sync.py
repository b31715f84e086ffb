"""LSE-D / LSE-C / AV offset as pure functions of SyncNet embeddings, and the batched evaluation of a
SyncNet critic. They live with the critic (:mod:`talkbench.critics.sync_eval`, whose trainer uses them
too); this module is their place in the metrics' functional API."""

from talkbench.critics.sync_eval import (
    LSEResult,
    lse,
    lse_from_embeddings,
    num_frames_scored,
    offset_distances,
)

__all__ = ["LSEResult", "lse", "lse_from_embeddings", "num_frames_scored", "offset_distances"]
