"""Model definitions: the binary ReActNet-A (single source of truth) and the float teacher."""

from train.models.reactnet import ReActNetA, ReActNetConfig, load_official_state_dict, reactnet_a
from train.models.teacher import Teacher, TeacherConfig, build_teacher

__all__ = ["ReActNetA", "ReActNetConfig", "reactnet_a", "load_official_state_dict", "Teacher",
           "TeacherConfig", "build_teacher"]
