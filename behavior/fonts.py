"""Fonts for text in pictures, found offline: the captions of annotated.mp4 and the class names of training's plots.

DejaVu Sans ships inside matplotlib (a dependency) and covers Latin, Greek and Cyrillic; for other scripts
(``打架``) the first system font with their glyphs is used, if any (for example Debian's ``fonts-noto-cjk``).
Nothing is ever downloaded.

Example:
    >>> font_for("Schlägerei").name
    'DejaVuSans.ttf'
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)


@cache
def _font_files() -> tuple[Path, ...]:
    """TrueType fonts to try, best first: matplotlib's DejaVu Sans, then the system's fonts."""
    import matplotlib
    from matplotlib import font_manager

    bundled = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    system = sorted(Path(p) for p in font_manager.findSystemFonts(fontext="ttf"))
    return tuple(p for p in (bundled, *system) if p.is_file())


@cache
def _covered(path: Path) -> frozenset[int]:
    """The code points a font file has glyphs for."""
    from fontTools.ttLib import TTFont

    try:
        with TTFont(str(path), fontNumber=0, lazy=True) as font:
            return frozenset(font.getBestCmap() or {})
    except Exception:  # an unreadable font is simply not used
        return frozenset()


def font_for(text: str) -> Path | None:
    """The first font file with a glyph for every character of ``text``; None when there is no font file at all."""
    return _font_covering(frozenset(c for c in text if not c.isascii()))


@cache
def _font_covering(chars: frozenset[str]) -> Path | None:
    """Keyed by the non-ASCII characters only, so "打架 0.93" and "打架 0.94" share the search and its warning."""
    needed = {ord(c) for c in chars if not c.isspace()} | {ord(c) for c in "0123456789.#"}
    for path in _font_files():
        if needed <= _covered(path):
            return path
    log.warning("no font on this machine has glyphs for %r: they show as boxes (install a font that covers them, "
                "for example Debian's fonts-noto-cjk)", "".join(sorted(chars)))
    return _font_files()[0] if _font_files() else None




def families_for(texts: Iterable[str]) -> list[str]:
    """matplotlib font families that draw every character of ``texts``: DejaVu Sans, then a font for the others."""
    from matplotlib import font_manager

    families = ["DejaVu Sans"]
    path = _font_covering(frozenset(c for text in texts for c in text if not c.isascii()))
    if path is not None:
        font_manager.fontManager.addfont(str(path))
        name = font_manager.FontProperties(fname=str(path)).get_name()
        families += [name] if name not in families else []
    return families
