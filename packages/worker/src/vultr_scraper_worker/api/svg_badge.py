"""Status badges as small SVG images: a grey label and a coloured value, in the common flat style.

Built with ElementTree, which escapes every text and attribute value; characters XML cannot
carry (control characters) are replaced and long texts are shortened, so any endpoint name or
plan id makes a well-formed image. Text is 11 px Verdana-like on a 20 px bar, white on colours
dark enough for it (contrast of at least 4.5:1), so a badge stays legible at its natural size in
a README. Widths come from a per-character estimate of Verdana's advance widths: no font files,
no measuring; a little spare room covers the fallback fonts.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from enum import StrEnum

SVG = "http://www.w3.org/2000/svg"
MAX_TEXT = 48  # characters per half; longer texts end in an ellipsis
HEIGHT = 20
FONT_SIZE = 11
PADDING = 6  # each side of each half
LABEL_COLOUR = "#555555"


class Colour(StrEnum):
    """Value backgrounds; white text on each has a contrast ratio of at least 4.5:1."""

    GOOD = "#1a7f37"
    BAD = "#cf222e"
    WARN = "#9a6700"
    INFO = "#0969da"
    NEUTRAL = "#6e7781"


# Verdana 11 px advance widths (px), rounded; anything else counts as a wide letter.
_WIDTHS: dict[str, float] = {
    **dict.fromkeys("iljI|!.,:;'`", 3.6),
    **dict.fromkeys(" ()[]{}/\\ft", 4.6),
    **dict.fromkeys('rsz*-"', 5.6),
    **dict.fromkeys("abcdeghknopquvxy0123456789$#+=<>?_~^·", 7.0),
    **dict.fromkeys("ABCDEFGHJKLNOPRSTUVXYZ&", 7.8),
    **dict.fromkeys("mwMW%@", 10.8),
}
_WIDE = 8.0
# XML 1.0 refuses C0 controls (but tab, newline, return), surrogates and U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    """One line of XML-safe text, at most ``MAX_TEXT`` characters."""
    line = " ".join(_NOT_XML.sub("\N{REPLACEMENT CHARACTER}", text).split())
    return line if len(line) <= MAX_TEXT else line[: MAX_TEXT - 1] + "\N{HORIZONTAL ELLIPSIS}"


def text_width(text: str) -> int:
    return round(sum(_WIDTHS.get(char, _WIDE) for char in text))


def render_badge(label: str, value: str, colour: Colour) -> bytes:
    """The SVG document; ``label`` and ``value`` are any text (escaped and cleaned here)."""
    label, value = clean(label), clean(value)
    left = text_width(label) + 2 * PADDING
    right = text_width(value) + 2 * PADDING
    width = left + right
    ET.register_namespace("", SVG)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{SVG}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    spoken = f"{label}: {value}"
    root = ET.Element(
        f"{{{SVG}}}svg",
        {
            "width": str(width),
            "height": str(HEIGHT),
            "viewBox": f"0 0 {width} {HEIGHT}",
            "role": "img",
            "aria-label": spoken,
        },
    )
    sub(root, "title", spoken)
    clip = sub(sub(root, "defs"), "clipPath", id="r")
    sub(clip, "rect", width=str(width), height=str(HEIGHT), rx="3", fill="#fff")
    bars = sub(root, "g", **{"clip-path": "url(#r)"})
    sub(bars, "rect", width=str(left), height=str(HEIGHT), fill=LABEL_COLOUR)
    sub(bars, "rect", x=str(left), width=str(right), height=str(HEIGHT), fill=str(colour))
    texts = sub(
        root,
        "g",
        fill="#fff",
        **{
            "text-anchor": "middle",
            "font-family": "Verdana,Geneva,DejaVu Sans,sans-serif",
            "font-size": str(FONT_SIZE),
            "text-rendering": "geometricPrecision",
        },
    )
    for centre, text, name in ((left / 2, label, "label"), (left + right / 2, value, "value")):
        # A faint shadow one pixel down keeps the text crisp on any background.
        sub(texts, "text", text, x=f"{centre:g}", y="15", fill="#010101", **{"fill-opacity": ".3"})
        sub(texts, "text", text, x=f"{centre:g}", y="14", **{"class": name})
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return document
