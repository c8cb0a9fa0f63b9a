"""3D segmentation geometry for the superpoint stage and the corruptions: RANSAC ground, joint clustering."""
