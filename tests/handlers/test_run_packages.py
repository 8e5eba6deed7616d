"""A run's package list is kept in tags anyone with write access may set: reading it back
never trusts the piece count those tags claim."""

from __future__ import annotations

import json

from jupyter_workbench.handlers.runs import PACKAGES_TAG, packages_from_tags, packages_tags


def test_a_long_package_list_round_trips_through_pieces():
    packages = {f"package-{n}": f"{n}.0.{n}" for n in range(2000)}
    tags = packages_tags(packages)
    assert int(tags[f"{PACKAGES_TAG}.pieces"]) > 1
    assert packages_from_tags(tags) == packages


def test_a_forged_piece_count_reads_only_the_pieces_that_are_there():
    text = json.dumps({"numpy": "2.0"})
    for count in ("99999999999999999999", "999999", "\u0663", "-1", ""):
        tags = {f"{PACKAGES_TAG}.pieces": count, f"{PACKAGES_TAG}.0": text}
        found = packages_from_tags(tags)  # at once, not a loop over the claimed count
        assert found in ({"numpy": "2.0"}, {}), (count, found)
    assert packages_from_tags({f"{PACKAGES_TAG}.pieces": "999999"}) == {}
