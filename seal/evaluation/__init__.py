"""Segmentation metrics (confusion matrix, IoU/mIoU) and robustness scores (CE/RR, mCE/mRR)."""
