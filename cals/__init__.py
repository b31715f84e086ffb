"""Context-Aware Lip-Sync (CALS): Audio-to-Lip transformer + Lip-to-Face U-Net + discriminative sync critic."""
