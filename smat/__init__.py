"""smat: learning and testing model explanations in JAX.

The public API of the SMaT core (Fernandes, Treviso et al. 2022):

>>> import smat
>>> result = smat.train_explainer(teacher_fn, teacher_params, data, smat.SmatConfig())  # doctest: +SKIP

``teacher_fn(params, batch, embeddings=None) -> smat.TeacherOutput`` is any model;
:func:`smat.encoder_teacher` wraps one of our encoders (:mod:`smat.models`).
"""

from smat import explainers, simplex
from smat.metalearn import MetaConfig, make_trainer
from smat.students import make_student
from smat.teacher import TeacherOutput, build_teacher_cache, encoder_teacher
from smat.train import SmatConfig, TrainResult, add_teacher_cache, simulability, train_explainer, train_student

__all__ = [
    "MetaConfig", "SmatConfig", "TeacherOutput", "TrainResult", "add_teacher_cache", "build_teacher_cache",
    "encoder_teacher", "explainers", "make_student", "make_trainer", "simplex", "simulability", "train_explainer",
    "train_student",
]
