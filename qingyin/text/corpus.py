"""The default Mandarin texts (qingyin/text/data/zh_default.txt): what `qingyin eval` and `qingyin bench` speak,
what the quality gate measures on (its first lines) and what static INT8 calibrates on (its last lines)."""

from __future__ import annotations

from pathlib import Path

from qingyin.options import InvalidOptionError

DEFAULT_TEXTS = Path(__file__).with_name("data") / "zh_default.txt"


def read_texts(path: str | Path | None = None) -> list[str]:
    """One sentence per line; blank lines and lines starting with '#' are skipped."""
    source = Path(path) if path else DEFAULT_TEXTS
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidOptionError(f"cannot read texts from {source}: {error}") from None
    texts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not texts:
        raise InvalidOptionError(f"{source} has no sentences (one per line; '#' starts a comment)")
    return texts
