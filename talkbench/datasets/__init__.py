"""Dataset readers, one per file; each yields :class:`talkbench.types.Sample` for a split.

Registry values are reader classes ``Reader(root: Path | None, **options)`` with
``samples(split: str) -> Iterator[Sample]``. The ``synth-*`` names read the synthetic corpus
(generated into the cache on first use when no root is given).
"""

from talkbench.registry import Registry

DATASETS: Registry = Registry("dataset")
for _name, _spec in {
    "lrw": "talkbench.datasets.lrw:LRWReader",
    "lrs2": "talkbench.datasets.lrs2:LRS2Reader",
    "hdtf": "talkbench.datasets.hdtf:HDTFReader",
    "folder": "talkbench.datasets.folder:FolderReader",
    "synth-lrw": "talkbench.datasets.synth.readers:SynthLRWReader",
    "synth-lrs2": "talkbench.datasets.synth.readers:SynthLRS2Reader",
    "synth-hdtf": "talkbench.datasets.synth.readers:SynthHDTFReader",
}.items():
    DATASETS.register(_name, _spec)

__all__ = ["DATASETS"]
