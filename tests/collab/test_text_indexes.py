"""Character indexes of Python strings turned into pycrdt's (or a Yjs peer's) text indexes."""

from __future__ import annotations

from pycrdt import Doc, Text

from jupyter_workbench.collab.room import index_units, text_units


def test_character_indexes_become_the_units_the_text_counts() -> None:
    text = "aé✓🚀"
    assert index_units("abc", 3) == [0, 1, 2, 3]
    assert index_units(text, 10) == [0, 1, 3, 6, 10]  # UTF-8 bytes (pycrdt)
    assert index_units(text, 5) == [0, 1, 2, 3, 5]  # UTF-16 code units (Yjs in a browser)
    ytext = Doc().get("content", type=Text)
    ytext.insert(0, text)
    at = index_units(text, len(ytext))
    ytext.insert(at[3], "|")  # before the rocket
    del ytext[at[1] : at[2]]  # the é
    assert str(ytext) == "a✓|🚀"


def test_embeds_take_a_place_in_the_index_and_none_in_the_string() -> None:
    ytext = Doc().get("content", type=Text)
    ytext.insert(0, "aé✓b")
    ytext.insert_embed(0, {"mention": "alice"})
    ytext.insert_embed(4, {"image": "cat.png"})  # after the é (UTF-8: 1 + 1 + 2)
    ytext.insert_embed(len(ytext), {"image": "end.png"})
    text, at = text_units(ytext)
    assert text == "aé✓b" and at == [1, 2, 5, 8, 10]
    del ytext[at[3] : at[4]]  # the b (and the last image: it sits before the end)
    ytext.insert(at[2], "|")  # before the ✓, after the image
    assert str(ytext) == "aé|✓"
