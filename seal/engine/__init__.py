"""Training loops (plain PyTorch; one process, or DDP through torchrun) and their checkpoints."""
