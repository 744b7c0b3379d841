"""What one request may ask of the engine: text that is valid Unicode, and a bounded amount of work.

Every entry point (the server's routes and WebSocket, `qingyin batch`, the CLI, the Python API) checks its text
with `check_text` and, where it serves others, passes `WorkLimits` to the engine, which enforces them twice:
`WorkLimits.check` before any synthesis (a cheap estimate from the text: obviously too much is refused at once),
and `WorkLimits.budget` while synthesizing (the audio each sentence's acoustics will make is counted before it is
rendered, so a request stops at the limit, streaming or not).

    limits = WorkLimits.for_chars(5000)   # the server's defaults for its --max-chars
    tts.synthesize(text, limits=limits)    # WorkLimitError (a ValueError) names the limit and its flag
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

from qingyin.options import InvalidOptionError
from qingyin.text import markup
from qingyin.text.hanzi import is_han
from qingyin.text.ssml import TooManyElementsError

# The default audio limit per character a request may have: Baker reads our evaluation set at 0.24 s per Chinese
# character at speed 1, pauses included (0.33 s when sad at intensity 2), so a request of the largest size at a
# normal rate fits, and one asking for 4x slower speech does not.
SECONDS_PER_CHAR = 0.3
# The up-front estimate's rate: below any voice's seconds per syllable (Baker 0.24 s at speed 1), so that the
# estimate refuses only what would certainly be too long; the engine's count catches the rest.
ESTIMATE_SECONDS_PER_SYLLABLE = 0.15
MAX_SSML_ELEMENTS = 1000  # a real document has one per sentence or pause; 5,000 characters hold at most ~1,250
MAX_BREAK_SECONDS = 120.0  # SSML <break> time per request (each break is capped at 10 s already)
FLAGS = {"max_audio_seconds": "--max-audio-seconds", "max_ssml_elements": "--max-ssml-elements",
         "max_break_seconds": "--max-break-seconds"}
_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidTextError(InvalidOptionError):
    """Text that is not valid Unicode (a lone surrogate); the message names the field and the position."""


class WorkLimitError(InvalidOptionError):
    """A request asks for more work than the limits allow; `limit` is the setting's name, the message names it,
    its value and how to change it."""

    def __init__(self, message: str, limit: str):
        super().__init__(message)
        self.limit = limit


def check_text(text: object, field: str = "text") -> str:
    """`text` itself when it is a string of valid Unicode; InvalidTextError otherwise.

    A lone surrogate (U+D800-U+DFFF) comes from a JSON escape like "\\ud800" or a bad decode upstream; it cannot be
    encoded as UTF-8, so it would break cache keys, manifests and logs far from where it came in."""
    if not isinstance(text, str):
        raise InvalidTextError(f"{field} must be a string, got {type(text).__name__}")
    found = _SURROGATE.search(text)
    if found is not None:
        code = ord(found.group())
        origin = " (an undecodable byte: the input is not UTF-8)" if 0xDC80 <= code <= 0xDCFF else ""
        raise InvalidTextError(f"{field} contains a lone surrogate U+{code:04X} at position {found.start()}{origin}; "
                               "send valid UTF-8/UTF-16 text")
    return text


@dataclass(frozen=True)
class WorkLimits:
    """What one request (a server request, a WebSocket message, a batch line or book part) may ask for."""

    max_audio_seconds: float = 5000 * SECONDS_PER_CHAR  # audio made, pauses included
    max_ssml_elements: int = MAX_SSML_ELEMENTS  # SSML elements, <speak> included
    max_break_seconds: float = MAX_BREAK_SECONDS  # SSML <break> time in all

    @classmethod
    def for_chars(cls, max_chars: int, max_audio_seconds: float | None = None,
                  max_ssml_elements: int = MAX_SSML_ELEMENTS, max_break_seconds: float = MAX_BREAK_SECONDS
                  ) -> WorkLimits:
        """The limits of a server or job that takes up to `max_chars` characters at a time; the audio limit, unless
        given, is SECONDS_PER_CHAR per character (5,000 characters: 1,500 s)."""
        audio = max_chars * SECONDS_PER_CHAR if max_audio_seconds is None else max_audio_seconds
        return cls(audio, max_ssml_elements, max_break_seconds).validated()

    def validated(self) -> WorkLimits:
        for name in ("max_audio_seconds", "max_break_seconds", "max_ssml_elements"):
            value = getattr(self, name)
            whole = name == "max_ssml_elements"
            if (not isinstance(value, numbers.Integral if whole else numbers.Real) or isinstance(value, bool)
                    or not math.isfinite(value) or value <= 0):
                kind = "a whole number >= 1" if whole else "a number of seconds > 0"
                raise InvalidOptionError(f"{name} must be {kind}, got {value!r}")
        return self

    def check(self, text: str, speed: float = 1.0) -> None:
        """Before synthesis: the SSML elements, the break time and an estimate of the audio (Chinese characters at
        ESTIMATE_SECONDS_PER_SYLLABLE over the speed, SSML <prosody rate> included, plus breaks) against the
        limits. WorkLimitError when over one; bad markup raises its own MarkupError (as synthesis would)."""
        try:
            segments = markup.parse(check_text(text), max_elements=self.max_ssml_elements)
        except TooManyElementsError as error:
            raise self._over("max_ssml_elements", f"the SSML has more than {self.max_ssml_elements:,} elements (the "
                             f"next one at line {error.line}, column {error.column})",
                             "use fewer elements or split the document") from None
        breaks = sum(s.ms for s in segments if isinstance(s, markup.Break)) / 1000
        if breaks > self.max_break_seconds:
            raise self._over("max_break_seconds", f"the SSML asks for {breaks:g} s of <break> in all",
                             "use shorter breaks or split the document")
        spoken = sum(sum(map(is_han, s.text)) / s.controls.speed for s in segments if isinstance(s, markup.Span))
        estimate = breaks + spoken * ESTIMATE_SECONDS_PER_SYLLABLE / speed
        if estimate > self.max_audio_seconds:
            raise self._over("max_audio_seconds", f"the text would make at least {estimate:,.0f} s of audio at "
                             f"speed {speed:g}", "split the text or speak faster")

    def budget(self) -> AudioBudget:
        """A counter for one request's synthesis (see AudioBudget.charge)."""
        return AudioBudget(self)

    def _over(self, name: str, what: str, remedy: str) -> WorkLimitError:
        value = getattr(self, name)
        unit = "" if name == "max_ssml_elements" else " s"
        environ = f"QINGYIN_{name.upper()}"
        return WorkLimitError(f"{what}; the limit is {value:,g}{unit} per request ({name}: {FLAGS[name]} or "
                              f"{environ} on the server, {FLAGS[name]} for qingyin batch); {remedy}", name)


class AudioBudget:
    """The audio and break time one request has made so far; `charge` raises WorkLimitError past a limit."""

    def __init__(self, limits: WorkLimits):
        self.limits = limits
        self.audio_seconds = 0.0
        self.break_seconds = 0.0

    def charge(self, audio_seconds: float, break_seconds: float = 0.0) -> None:
        """Count the next piece (its audio and the pause after it, of which `break_seconds` were asked for by
        <break>) before it is rendered."""
        self.break_seconds += break_seconds
        if self.break_seconds > self.limits.max_break_seconds:
            raise self.limits._over("max_break_seconds", f"the SSML asks for more than "
                                    f"{self.limits.max_break_seconds:g} s of <break>", "use shorter breaks")
        if self.audio_seconds + audio_seconds > self.limits.max_audio_seconds:
            raise self.limits._over("max_audio_seconds", "the audio would run past the limit (stopped after "
                                    f"{self.audio_seconds:,.1f} s)",
                                    "split the text or speak faster")
        self.audio_seconds += audio_seconds
