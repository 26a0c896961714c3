"""Sequence models around a ``GLRMixer`` (PyTorch): ``ModelConfig`` and ``SequenceModel``.

>>> from glrtheory.models import ModelConfig, SequenceModel
>>> model = SequenceModel(ModelConfig(vocab_size=16, pattern="fenwick"))
>>> model(torch.zeros(2, 5, dtype=torch.long)).shape    # doctest: +SKIP
torch.Size([2, 5, 16])
"""
from .config import SCORES, ModelConfig
from .sequence import ModelCache, SequenceModel

__all__ = ["SCORES", "ModelConfig", "ModelCache", "SequenceModel"]
