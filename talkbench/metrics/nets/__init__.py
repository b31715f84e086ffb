"""Feature networks of the field's distribution and perceptual metrics, in the module layouts of the
official checkpoints (so those files load strictly): Inception-V3 (pytorch-fid), I3D (piergiaj
pytorch-i3d), AlexNet (torchvision, for LPIPS), IResNet (insightface arcface_torch)."""
