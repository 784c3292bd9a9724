"""QR codes of share links, drawn on the server as SVG (segno), so a projector shows them with no script.

The SVG carries no style attribute (the Content-Security-Policy allows no inline style): its size comes from
lauks.css (``.qr svg``), its colour from the path's ``stroke`` presentation attribute.
"""

from __future__ import annotations

import segno
from markupsafe import Markup


def svg(url: str, label: str) -> Markup:
    """The QR code of ``url`` as inline SVG markup; ``label`` is what a screen reader says for it."""
    code = segno.make(url, error="m", micro=False)
    markup = code.svg_inline(scale=1, border=4, omitsize=True, svgclass="qr-code", lineclass=None, title=label,
                             dark="#000", light="#fff")
    # role and label for assistive technology; segno's output is ours (no user text but the escaped title)
    return Markup(markup.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(label)}" ', 1))
