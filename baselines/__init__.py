"""Baseline talking-face generators as native PyTorch implementations."""
