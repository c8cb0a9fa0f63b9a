"""The image side of a pretraining step at high resolution: the frozen teacher's forward in chunks of images and in
reduced precision, and the checks of the crop size that feeds it.

``teacher.dtype`` (float32 | bfloat16 | float16) is the teacher's precision on CUDA. It runs under an autocast of
its own, so ``train.amp`` (the student's autocast) never reaches it: float32 really is float32 (TF32 as torch is
set), bf16/fp16 keep the frozen weights in float32 and run the matmuls and convolutions in the reduced type. On a
CPU reduced precision is ignored, said once: a config written for a GPU cluster still runs a CPU smoke test.
``teacher.chunk`` is how many images go through the teacher at once (0 = all): the maps of each chunk are cast to
float32 into one preallocated [I, C, h, w] tensor, so peak memory is one chunk's activations plus the output.
Chunking changes nothing but memory: each image's features do not depend on the other images of a forward.
"""

from __future__ import annotations

import torch
from torch import nn

from seal.core.config import AugmentConfig, TeacherConfig
from seal.core.errors import ConfigError

__all__ = ["MAX_CROP_SIDE", "TeacherForward", "check_crop_size", "crop_note", "teacher_dtype"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
MAX_CROP_SIDE = 4096  # pixels per side of augment.crop_size: beyond this a value is a typo, not a camera


def teacher_dtype(cfg: TeacherConfig, device: torch.device, say: bool = True) -> torch.dtype:
    """The dtype the teacher runs in on ``device``: ``teacher.dtype`` on CUDA, float32 elsewhere (a reduced one asked
    for on a CPU is named once when ``say``). A GPU without bfloat16 support refuses bfloat16 in one line."""
    if cfg.dtype not in DTYPES:
        raise ConfigError(f"config key 'teacher.dtype' = {cfg.dtype!r}: must be one of {', '.join(DTYPES)}")
    dtype = DTYPES[cfg.dtype]
    if dtype is torch.float32:
        return dtype
    if device.type != "cuda":
        if say:
            print(f"seal: teacher.dtype={cfg.dtype} is ignored on {device.type}: the teacher runs in float32 there "
                  "(reduced precision is for CUDA)")
        return torch.float32
    if dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"config key 'teacher.dtype' = 'bfloat16': {torch.cuda.get_device_name(device)} has no "
                          "bfloat16 support; use float16")
    return dtype


class TeacherForward:
    """Callable ``images [I, 3, H, W] -> float32 maps [I, C, h, w]`` of a frozen teacher, ``chunk`` images at a
    time (0 = all) in ``dtype`` (CUDA only; see the module docstring)."""

    def __init__(self, teacher: nn.Module, dtype: torch.dtype = torch.float32, chunk: int = 0) -> None:
        if chunk < 0:
            raise ConfigError(f"config key 'teacher.chunk' = {chunk}: must be >= 0 (0 = every image at once)")
        self.teacher, self.dtype, self.chunk = teacher, dtype, chunk

    @classmethod
    def from_config(cls, teacher: nn.Module, cfg: TeacherConfig, device: torch.device,
                    say: bool = True) -> TeacherForward:
        """The forward ``teacher.dtype`` and ``teacher.chunk`` ask for, on ``device``."""
        return cls(teacher, teacher_dtype(cfg, device, say), cfg.chunk)

    def _one(self, images: torch.Tensor, truth: torch.Tensor | None) -> torch.Tensor:
        args = (images,) if truth is None else (images, truth)  # truth: read by the oracle controls only
        if images.device.type == "cuda":  # enabled=False for float32: the trainer's autocast stops here
            with torch.autocast("cuda", dtype=self.dtype, enabled=self.dtype is not torch.float32):
                return self.teacher(*args)
        return self.teacher(*args)

    def __call__(self, images: torch.Tensor, truth: torch.Tensor | None = None) -> torch.Tensor:
        count = images.shape[0]
        if self.chunk == 0 or self.chunk >= count:
            return self._one(images, truth).float()
        out: torch.Tensor | None = None
        for start in range(0, count, self.chunk):
            part = None if truth is None else truth[start:start + self.chunk]
            maps = self._one(images[start:start + self.chunk], part)
            if out is None:  # the shape is the teacher's to say: allocated from the first chunk
                out = maps.new_empty((count, *maps.shape[1:]), dtype=torch.float32)
            out[start:start + maps.shape[0]] = maps
        assert out is not None
        return out


def check_crop_size(aug: AugmentConfig) -> None:
    """One line naming ``augment.crop_size`` when it is not two pixel counts in 1..MAX_CROP_SIDE (height, width)."""
    size = list(aug.crop_size)
    ok = (len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
          and all(1 <= v <= MAX_CROP_SIDE for v in size))
    if not ok:
        raise ConfigError(f"config key 'augment.crop_size' = {size}: must be [height, width], two whole numbers of "
                          f"pixels between 1 and {MAX_CROP_SIDE} (e.g. [224, 416] or [448, 896])")


def crop_note(aug: AugmentConfig, sizes: set[tuple[int, int]]) -> str | None:
    """What to say when the crops are larger than the camera images (height, width) they come from: a crop is a box
    inside the image resized to ``augment.crop_size``, so such crops are upscaled (never refused, never padded)."""
    height, width = aug.crop_size
    small = sorted((h, w) for h, w in sizes if h < height or w < width)
    if not small:
        return None
    shown = ", ".join(f"{h}x{w}" for h, w in small)
    return (f"seal: augment.crop_size {height}x{width} is larger than the camera images ({shown}; height x width "
            "both): every crop box lies inside its image and is upscaled to that size")
