"""The objectives: Seal's distillation losses (L_vfm, L_tmp, L_p2s) and the downstream segmentation loss."""
