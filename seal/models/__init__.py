"""Networks: the sparse-convolution 3D backbone and the frozen image teachers with their trainable heads.

Three registries pick them by name: `BACKBONES` (``model.backbone.name``), `TEACHERS` (``teacher.backbone``) and
`ENGINES` (``model.engine``). Importing this package registers the built-ins.
"""

from seal.models import (  # noqa: F401 - they register themselves
    minkunet,
    teacher_families,
    teachers_dinov3,
    teachers_oracle,
    teachers_radio,
    teachers_sam,
    waffleiron,
)
from seal.models.backbones import BACKBONES, BackboneSpec, SparseBackbone, build_backbone
from seal.models.sparse import ENGINES, EngineSpec
from seal.models.teachers import TEACHERS, TeacherSpec, build_image_backbone

__all__ = ["BACKBONES", "BackboneSpec", "ENGINES", "EngineSpec", "SparseBackbone", "TEACHERS", "TeacherSpec",
           "build_backbone", "build_image_backbone"]
