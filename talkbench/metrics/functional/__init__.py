"""Pure metric functions on arrays/tensors (no state, no I/O)."""

from talkbench.metrics.functional.image import peak_signal_noise_ratio, structural_similarity
from talkbench.metrics.functional.landmarks import LMD_VARIANTS, landmark_distance, landmark_velocity_error

__all__ = [
    "LMD_VARIANTS",
    "landmark_distance",
    "landmark_velocity_error",
    "peak_signal_noise_ratio",
    "structural_similarity",
]
