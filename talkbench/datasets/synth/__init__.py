"""datasets/synth."""
