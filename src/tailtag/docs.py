"""Keep generated text (the demo's comparison tables) in the README, between markers.

A block looks like::

    <!-- BEGIN generated: NAME -->
    ...generated text...
    <!-- END generated: NAME -->

`embed` replaces what lies between the markers and leaves everything else alone, so the
README shows results that were produced, never typed.
"""

from __future__ import annotations

import re


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- BEGIN generated: {re.escape(name)} -->\n)(.*?)(<!-- END generated: "
        rf"{re.escape(name)} -->)",
        re.DOTALL,
    )


def generated_block(text: str, name: str) -> str:
    """Return the text between the markers of block `name` (KeyError if absent)."""
    match = _pattern(name).search(text)
    if match is None:
        raise KeyError(f"no generated block {name!r} (markers <!-- BEGIN generated: {name} -->)")
    return match.group(2)


def embed(text: str, name: str, content: str) -> str:
    """Return `text` with block `name` replaced by `content` (which gets a final newline)."""
    generated_block(text, name)  # raises a clear KeyError when the markers are missing
    if not content.endswith("\n"):
        content += "\n"
    return _pattern(name).sub(lambda m: m.group(1) + content + m.group(3), text, count=1)
