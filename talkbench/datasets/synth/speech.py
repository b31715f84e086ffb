"""espeak-ng speech with per-phoneme timings, through ctypes on the library shipped by
``espeakng-loader`` (no apt). Layout of ``espeak_EVENT`` and the constants follow ``speak_lib.h``.

Audio positions of PHONEME events are milliseconds from the start of each ``espeak_Synth`` call;
phoneme ``i`` ends where ``i + 1`` starts, the last at the end of the audio. With ``espeakENDPAUSE``
the samples are bit-identical to the ``espeak-ng`` CLI's. Stress marks (1.52 adds ``'`` and ``,``)
are stripped so names are stable across versions.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

from talkbench.errors import ConfigError, TalkbenchError
from talkbench.io.audio import resample

AUDIO_OUTPUT_SYNCHRONOUS = 2
PHONEME_EVENTS = 0x0001
DONT_EXIT = 0x8000
POS_CHARACTER = 1
CHARS_UTF8 = 1
ENDPAUSE = 0x1000
EVENT_WORD = 1
EVENT_PHONEME = 7
PARAM_RATE, PARAM_PITCH, PARAM_RANGE = 1, 3, 4


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
        ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_LOCK = threading.Lock()
_STATE: dict = {}

VOICES = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029")


@dataclass(frozen=True)
class Phone:
    phone: str
    start: float
    end: float


@dataclass(frozen=True)
class Utterance:
    text: str
    audio: np.ndarray  # float32 mono at ``sample_rate``
    sample_rate: int
    phones: tuple[Phone, ...]
    words: tuple[tuple[str, float, float], ...]
    voice: str


def _lib() -> ctypes.CDLL:
    if "lib" not in _STATE:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise TalkbenchError("espeakng-loader is not installed: pip install espeakng-loader") from exc
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(),
                                     PHONEME_EVENTS | DONT_EXIT)
        if rate <= 0:
            raise TalkbenchError("espeak-ng failed to initialise (data path?)", espeakng_loader.get_data_path())
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        _STATE.update(lib=lib, rate=rate)

        def _cb(wav, n, events):
            if wav and n > 0:
                _STATE["chunks"].append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            i = 0
            while events[i].type != 0:
                ev = events[i]
                if ev.type == EVENT_PHONEME:
                    _STATE["events"].append(("P", ev.audio_position, bytes(ev.id.string).split(b"\0")[0].decode("utf-8", "replace")))
                elif ev.type == EVENT_WORD:
                    _STATE["events"].append(("W", ev.audio_position, (ev.text_position, ev.length)))
                i += 1
            return 0

        _STATE["cb"] = _CALLBACK(_cb)  # keep a reference: the library calls it later
        lib.espeak_SetSynthCallback(_STATE["cb"])
    return _STATE["lib"]


def synthesize(text: str, voice: str = "en", rate: int = 160, pitch: int = 50, sample_rate: int = 16000) -> Utterance:
    """Speak ``text``; returns audio at ``sample_rate`` with phoneme and word timings (seconds).

    espeak-ng keeps global state across calls (its pitch-flutter table index advances with every
    pitch period and survives re-initialisation), so the same text would give slightly different
    samples depending on what was spoken before. Each call therefore runs in a freshly forked child
    of a process that never synthesizes itself: identical inputs give bit-identical audio.
    """
    if not text or not text.strip():
        raise ConfigError("empty text: nothing to synthesize")
    if voice not in VOICES:
        raise ConfigError(f"unknown voice {voice!r}; available: {', '.join(VOICES)}")
    return _in_fresh_process(_synthesize, text, voice, rate, pitch, sample_rate)


def _in_fresh_process(fn, *args):
    import os
    import pickle

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: compute, send, exit without running the parent's atexit handlers
        os.close(read_fd)
        try:
            payload = pickle.dumps(("ok", fn(*args)))
        except BaseException as exc:
            payload = pickle.dumps(("err", exc))
        with os.fdopen(write_fd, "wb") as w:
            w.write(payload)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as r:
        data = r.read()
    os.waitpid(pid, 0)
    if not data:
        raise TalkbenchError("espeak-ng worker died without a result")
    status, value = pickle.loads(data)
    if status == "err":
        raise value
    return value


def _synthesize(text: str, voice: str, rate: int, pitch: int, sample_rate: int) -> Utterance:
    with _LOCK:
        lib = _lib()
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ConfigError(f"espeak-ng rejected voice {voice!r}")
        lib.espeak_SetParameter(PARAM_RATE, int(rate), 0)
        lib.espeak_SetParameter(PARAM_PITCH, int(pitch), 0)
        _STATE["chunks"], _STATE["events"] = [], []
        data = text.encode("utf-8") + b"\0"
        lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8 | ENDPAUSE, None, None)
        lib.espeak_Synchronize()
        chunks, events, sr = _STATE["chunks"], _STATE["events"], _STATE["rate"]
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    total = len(pcm) / sr
    marks = [(pos / 1000.0, name) for kind, pos, name in events if kind == "P"]
    phones = []
    for i, (start, name) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else total
        name = name.replace("'", "").replace(",", "").replace("ˈ", "").replace("ˌ", "")
        phones.append(Phone(name or "_", start, max(start, end)))
    words = []
    wmarks = [(pos / 1000.0, span) for kind, pos, span in events if kind == "W"]
    raw = text.encode("utf-8")
    for i, (start, (tpos, length)) in enumerate(wmarks):
        end = wmarks[i + 1][0] if i + 1 < len(wmarks) else total
        word = raw[max(0, tpos - 1) : max(0, tpos - 1) + length].decode("utf-8", "replace")
        words.append((word, start, end))
    audio = resample(pcm.astype(np.float32) / 32768.0, sr, sample_rate)
    return Utterance(text, audio, sample_rate, tuple(phones), tuple(words), voice)
