"""``talkbench doctor``: what this environment has and lacks."""

from __future__ import annotations

import importlib.util
import json
import platform
import sys

import click

from talkbench.cache import cache_dir
from talkbench.weights import CHECKPOINT_DIR, find_weights, weight_dirs

OFFICIAL_WEIGHTS = {
    "wav2lip.pth": "Wav2Lip generator",
    "wav2lip_gan.pth": "Wav2Lip generator (GAN)",
    "lipsync_expert.pth": "Wav2Lip expert sync discriminator",
    "visual_quality_disc.pth": "Wav2Lip visual quality discriminator",
    "synctalkface.ckpt": "SyncTalkFace generator/decoder/disc (authors' training-checkpoint layout; none published)",
    "synctalkface_expert.pth": "SyncTalkFace 128-px expert sync discriminator",
    "audio2head.pth.tar": "Audio2Head (audio2pose, audio2kp, generator, kp_detector)",
    "pcavs/latest_net_G.pth": "PC-AVS generator",
    "pcavs/latest_net_V.pth": "PC-AVS identity encoder",
    "pcavs/latest_net_E.pth": "PC-AVS non-identity encoder",
    "pcavs/latest_net_A_sync.pth": "PC-AVS audio sync encoder",
    "atvgnet/atnet_lstm_18.pth": "ATVGnet AT-net (folder atvgnet/: also generator_23.pth and basics/*.npy)",
    "atvgnet/generator_23.pth": "ATVGnet VG-net",
    "atvgnet/basics/U_lrw1.npy": "ATVGnet landmark PCA (with mean_lrw1, base_68*, mean_shape_*, S .npy)",
    "syncnet_v2.model": "SyncNet (LSE-D/LSE-C)",
    "lrw_resnet18_mstcn.pth": "LRW lip reader (mpc001)",
    "lrw_resnet18_mstcn_adamw_s3.pth.tar": "LRW lip reader (mpc001)",
    "lrw_resnet18_mstcn.pth.tar": "LRW lip reader (mpc001)",
    "lrw_resnet18_mstcn_video.pth": "LRW lip reader (mpc001)",
}


def collect() -> dict:
    """Everything doctor reports, as a dict (also used by run.json)."""
    import torch

    info: dict = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cache_dir": str(cache_dir()),
        "weight_dirs": [str(d) for d in weight_dirs()],
    }
    try:
        from talkbench.faces.models import DLIB_MODELS, dlib_models_dir

        root = dlib_models_dir()
        info["dlib_models"] = {k: bool(root and (root / v).exists()) for k, v in DLIB_MODELS.items()}
        import dlib

        info["dlib"] = dlib.__version__
    except Exception as exc:  # report, never crash doctor
        info["dlib"] = f"unavailable: {exc}"
    try:
        import espeakng_loader

        info["espeak"] = {"library": espeakng_loader.get_library_path(), "data": espeakng_loader.get_data_path()}
    except Exception as exc:
        info["espeak"] = f"unavailable: {exc}"
    info["face_alignment"] = importlib.util.find_spec("face_alignment") is not None
    try:
        from talkbench.faces.landmarks import fan_weights_path

        info["face_alignment_weights"] = str(fan_weights_path()) if fan_weights_path() else None
    except Exception:
        info["face_alignment_weights"] = None
    info["official_weights"] = {n: (str(p) if (p := find_weights(n)) else None) for n in OFFICIAL_WEIGHTS}
    info["shipped_checkpoints"] = sorted(str(p.relative_to(CHECKPOINT_DIR)) for p in CHECKPOINT_DIR.rglob("*.safetensors"))
    from talkbench.metrics.nets.weights import NETS, find_net_weights

    # The field's metric networks (FID, FVD, LPIPS, ArcFace): found file or the name to put in a weight folder.
    info["metric_weights"] = {n: {"found": str(p) if (p := find_net_weights(n)) else None, "file": s.files[0],
                                  "for": s.description, "from": s.origin} for n, s in NETS.items()}
    return info


@click.command(name="doctor")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def doctor(as_json: bool) -> None:
    """Environment, models and weights found, and what is missing."""
    info = collect()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    ok = click.style("ok", fg="green")
    missing = click.style("missing", fg="yellow")
    click.echo(f"python        {info['python']}  ({info['platform']})")
    click.echo(f"torch         {info['torch']}  cuda: {info['cuda']} {info['cuda_devices'] or ''}")
    click.echo(f"dlib          {info['dlib']}")
    for k, v in info.get("dlib_models", {}).items():
        click.echo(f"  dlib model  {k:<12} {ok if v else missing}")
    esp = info["espeak"]
    click.echo(f"espeak-ng     {ok + ' ' + esp['library'] if isinstance(esp, dict) else esp}")
    fa = info["face_alignment"]
    click.echo(f"face-alignment {'installed' if fa else 'not installed'} (weights: {info['face_alignment_weights'] or 'none on disk; optional'})")
    click.echo(f"cache dir     {info['cache_dir']}")
    click.echo("official weights (searched in: " + ", ".join(info["weight_dirs"]) + ")")
    for name, path in info["official_weights"].items():
        click.echo(f"  {name:<38} {path or missing}  [{OFFICIAL_WEIGHTS[name]}]")
    click.echo("metric networks (fid, fvd, lpips, csim-arcface; none can be downloaded: put the file in a weight folder)")
    for w in info["metric_weights"].values():
        click.echo(f"  {w['file']:<38} {w['found'] or missing}  [{w['for']}; from {w['from']}]")
    click.echo("shipped checkpoints: " + (", ".join(info["shipped_checkpoints"]) or "none"))
