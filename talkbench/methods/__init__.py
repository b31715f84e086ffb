"""Method registry. Third-party methods register through the ``talkbench.methods`` entry-point
group (value: ``"module:factory"`` returning a :class:`Method`)."""

from talkbench.methods.base import Method
from talkbench.registry import Registry

METHODS: Registry = Registry("method", entry_point_group="talkbench.methods")
for _name, _spec in {
    "gt": "talkbench.methods.reference:GroundTruth",
    "static": "talkbench.methods.reference:StaticFrame",
    "cals": "cals.adapter:CALSMethod",
    "wav2lip": "baselines.wav2lip.adapter:Wav2LipMethod",
    "synctalkface": "baselines.synctalkface.adapter:SyncTalkFaceMethod",
    "audio2head": "baselines.audio2head.adapter:Audio2HeadMethod",
    "audio2head-kp-oracle": "baselines.audio2head.adapter:Audio2HeadKpOracle",
    "pcavs": "baselines.pcavs.adapter:PCAVSMethod",
    "atvgnet": "baselines.atvgnet.adapter:ATVGnetMethod",
    "precomputed": "talkbench.methods.precomputed:PrecomputedMethod",
    "external": "talkbench.methods.external:ExternalMethod",
}.items():
    METHODS.register(_name, _spec)

__all__ = ["METHODS", "Method"]
