"""talkbench: benchmark and evaluation suite for audio-driven talking-face generation."""

__version__ = "0.1.0"
