"""Wav2Lip (Prajwal et al., ACM MM 2020), native implementation loading the official checkpoints."""
