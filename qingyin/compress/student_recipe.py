"""The recipe of a student acoustic model: its shape and its training settings, plain data without torch (the
command line reads it). qingyin.compress.student builds the student, qingyin.compress.student_training trains it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


class StudentError(ValueError):
    """A student shape that does not fit the teacher, or a folder without a student."""


@dataclass(frozen=True)
class StudentShape:
    """The student's decoder and postnet (issue 15's 2 x 192 decoder with a 3 x 256 postnet by default)."""

    decoder_hidden: int = 192
    decoder_layers: int = 2
    ffn_channels: int = 768
    postnet_layers: int = 3
    postnet_channels: int = 256
    decoder_heads: int | None = None  # attention heads per decoder layer; None: the teacher's

    def check(self, *teacher: int) -> None:
        """Each width and count at least 1 (the postnet: 2 layers) and at most the teacher's, given in the order
        of the fields."""
        for name, limit in zip(self.__dataclass_fields__, teacher, strict=True):
            value = getattr(self, name)
            if name == "decoder_heads" and value is None:
                continue
            lowest = 2 if name == "postnet_layers" else 1
            if not isinstance(value, int) or not lowest <= value <= limit:
                raise StudentError(f"{name} must be a whole number from {lowest} to the teacher's {limit}, got "
                                   f"{value!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> StudentShape:
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise StudentError(f"unknown student shape keys {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**values)

    @classmethod
    def pruned(cls, ratio: float, *teacher: int, round_to: int = 8) -> StudentShape:
        """The teacher's shape (its numbers in the order of the fields) with `ratio` of the channels of every
        width removed (the decoder's residual width, its feed-forward channels, the postnet's channels), each
        count rounded to a multiple of `round_to`, and `ratio` of the heads removed (rounded up, at least one
        left); the layer counts stay the teacher's."""
        if not (isinstance(ratio, int | float) and 0 < ratio < 1):
            raise StudentError(f"the pruning ratio must be between 0 and 1 (the fraction of channels removed), got "
                               f"{ratio!r}")
        hidden, layers, ffn, postnet_layers, postnet_channels, heads = teacher

        def kept(width: int) -> int:
            return min(width, max(round_to, round_to * round(width * (1 - ratio) / round_to)))

        return cls(kept(hidden), layers, kept(ffn), postnet_layers, kept(postnet_channels),
                   max(1, math.ceil(heads * (1 - ratio) - 1e-9)))


@dataclass(frozen=True)
class StudentSettings:
    """How a student is trained (saved in recipe.json; a resumed run must give the same).

    The loss is the L1 distance of the student's mel to the teacher's, before the postnet and after it
    (FastSpeech2's two mel losses), on whole utterances decoded with the teacher's durations, pitch and energy.
    """

    shape: StudentShape = field(default_factory=StudentShape)
    batch_size: int = 16  # utterances a step
    # a step's utterances are neighbours in length (a window of the training utterances sorted by frames,
    # around one drawn at random) rather than drawn independently: a third less padding to decode on Baker
    batch_by_length: bool = True
    max_frames: int = 800  # utterances longer than this are not trained on (memory); Baker: 10 s
    learning_rate: float = 5e-4  # Adam, after a linear warm-up
    warmup_steps: int = 500
    learning_rate_half_life: int = 0  # steps over which it then halves, smoothly; 0: constant
    betas: tuple[float, float] = (0.9, 0.98)
    gradient_clip: float = 1.0
    validation_utterances: int = 16  # the last ones of the teacher data, never trained on
    seed: int = 0
    # Feature hints: each decoder layer's output against the output of the teacher layer it was cut from, on the
    # residual channels the student kept, as an L1 relative to the teacher's; the teacher runs on every batch.
    hint_weight: float = 0.0

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["betas"] = list(self.betas)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> StudentSettings:
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise StudentError(f"unknown student settings {unknown}")
        values = dict(values)
        if "shape" in values:
            values["shape"] = StudentShape.from_dict(values["shape"])
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        values.setdefault("batch_by_length", False)  # recipes saved before it existed drew batches uniformly
        return cls(**values)

    def check(self) -> None:
        for name in ("batch_size", "max_frames", "validation_utterances"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise StudentError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}")
        if not isinstance(self.batch_by_length, bool):
            raise StudentError(f"batch_by_length must be true or false, got {self.batch_by_length!r}")
        if not self.learning_rate > 0 or self.warmup_steps < 0 or not self.gradient_clip > 0:
            raise StudentError("learning_rate and gradient_clip must be > 0 and warmup_steps >= 0")
        if not isinstance(self.learning_rate_half_life, int) or self.learning_rate_half_life < 0:
            raise StudentError(f"learning_rate_half_life must be a whole number >= 0 (0: constant), got "
                               f"{self.learning_rate_half_life!r}")
        if not (isinstance(self.hint_weight, int | float) and math.isfinite(self.hint_weight)
                and self.hint_weight >= 0):
            raise StudentError(f"hint_weight must be a number >= 0, got {self.hint_weight!r}")
