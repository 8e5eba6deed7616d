"""hub_config/profiles.yaml: the shipped file is valid, and mistakes are named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupyter_workbench.hub.profiles import (
    ProfileError,
    find_profile,
    load_profiles,
    parse_profiles,
)

SHIPPED = Path(__file__).resolve().parents[2] / "hub_config" / "profiles.yaml"


def test_the_shipped_profiles_offer_cpu_one_gpu_and_multi_gpu() -> None:
    profiles = load_profiles(SHIPPED)
    by_gpus = {p.gpus: p for p in profiles}
    assert set(by_gpus) >= {0, 1, 4}
    assert find_profile(profiles, None).gpus == 0  # the default is CPU only
    for profile in profiles:
        if profile.gpus:
            assert profile.node_selector and profile.tolerations, profile.slug


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "profiles: a top-level list"),
        ({"profiles": []}, "at least one profile"),
        ({"profiles": [{"slug": "Bad Slug"}]}, "profiles[0].slug"),
        ({"profiles": [{"slug": "a", "gpus": -1}]}, "profile 'a'.gpus"),
        ({"profiles": [{"slug": "a", "gpus": True}]}, "profile 'a'.gpus"),
        ({"profiles": [{"slug": "a", "memory": "lots"}]}, "profile 'a'.memory"),
        ({"profiles": [{"slug": "a", "colour": "red"}]}, "profiles[0].colour: unknown field"),
        ({"profiles": [{"slug": "a"}, {"slug": "a"}]}, "slug used twice"),
        ({"profiles": [{"slug": "a", "default": True}, {"slug": "b", "default": True}]},
         "only one may be the default"),
        ({"profiles": [{"slug": "a", "node_selector": {"k": 1}}]}, "node_selector"),
    ],
)  # fmt: skip
def test_mistakes_are_named(doc: Any, message: str) -> None:
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_profiles(doc)


def test_an_unknown_profile_is_refused_by_name() -> None:
    profiles = parse_profiles({"profiles": [{"slug": "cpu"}]})
    with pytest.raises(ProfileError, match="no profile 'gpu-9'"):
        find_profile(profiles, "gpu-9")


@pytest.mark.parametrize("slug", [["gpu-1"], 1, {"slug": "cpu"}, True])
def test_a_profile_that_is_not_a_string_is_refused_not_defaulted(slug: Any) -> None:
    # a REST spawn's user_options are any JSON: {"profile": ["gpu-1"]} must not start the CPU one
    profiles = parse_profiles({"profiles": [{"slug": "cpu"}, {"slug": "gpu-1", "gpus": 1}]})
    with pytest.raises(ProfileError, match=r"a profile's slug \(a string\), not"):
        find_profile(profiles, slug)
    assert find_profile(profiles, "").slug == "cpu"
