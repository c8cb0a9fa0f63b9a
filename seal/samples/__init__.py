"""Training samples built from frames and stage caches: augmentation, frame pairs, labelled frames, batches."""
