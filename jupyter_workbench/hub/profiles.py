"""Server profiles (``hub_config/profiles.yaml``): what the spawn page offers.

One list for both targets: KubeSpawner's ``profile_list`` on Kubernetes, the local spawner's
options form locally. ``gpus`` is what quotas and GPU-hour accounting count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MEMORY = re.compile(r"^[0-9]+(\.[0-9]+)?[KMGT]i?$")
KNOWN = {
    "slug", "display_name", "description", "default", "gpus", "cpu", "cpu_guarantee", "memory",
    "image", "node_selector", "tolerations", "kubespawner_override",
}  # fmt: skip


class ProfileError(ValueError):
    """profiles.yaml is wrong; the message names the profile and the field."""


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    gpus: int = 0
    cpu: float | None = None
    cpu_guarantee: float | None = None
    memory: str | None = None
    image: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    kubespawner_override: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """What users and the admin panel see of a profile."""
        return {
            "slug": self.slug,
            "display_name": self.display_name,
            "description": self.description,
            "default": self.default,
            "gpus": self.gpus,
            "cpu": self.cpu,
            "memory": self.memory,
        }


def _profile(index: int, raw: Any) -> Profile:
    where = f"profiles[{index}]"
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: must be a mapping")
    unknown = sorted(set(raw) - KNOWN)
    if unknown:
        raise ProfileError(f"{where}.{unknown[0]}: unknown field")
    slug = raw.get("slug")
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise ProfileError(f"{where}.slug: must match {SLUG.pattern}")
    where = f"profile {slug!r}"
    gpus = raw.get("gpus", 0)
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 0:
        raise ProfileError(f"{where}.gpus: must be an integer >= 0")
    for name in ("cpu", "cpu_guarantee"):
        value = raw.get(name)
        if value is not None and (not isinstance(value, int | float) or value <= 0):
            raise ProfileError(f"{where}.{name}: must be a positive number")
    memory = raw.get("memory")
    if memory is not None and (not isinstance(memory, str) or not MEMORY.match(memory)):
        raise ProfileError(f"{where}.memory: must look like '8G' or '512Mi'")
    selector = raw.get("node_selector") or {}
    if not isinstance(selector, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in selector.items()
    ):
        raise ProfileError(f"{where}.node_selector: must map strings to strings")
    tolerations = raw.get("tolerations") or []
    if not isinstance(tolerations, list) or not all(isinstance(t, dict) for t in tolerations):
        raise ProfileError(f"{where}.tolerations: must be a list of mappings")
    override = raw.get("kubespawner_override") or {}
    if not isinstance(override, dict):
        raise ProfileError(f"{where}.kubespawner_override: must be a mapping")
    for name in ("display_name", "description", "image"):
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            raise ProfileError(f"{where}.{name}: must be a string")
    return Profile(
        slug=slug,
        display_name=raw.get("display_name") or slug,
        description=raw.get("description") or "",
        default=bool(raw.get("default", False)),
        gpus=gpus,
        cpu=raw.get("cpu"),
        cpu_guarantee=raw.get("cpu_guarantee"),
        memory=memory,
        image=raw.get("image"),
        node_selector=dict(selector),
        tolerations=list(tolerations),
        kubespawner_override=dict(override),
    )


def parse_profiles(data: Any) -> list[Profile]:
    """Validate the loaded YAML document; raises ProfileError naming what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), list):
        raise ProfileError("profiles: a top-level list 'profiles' is required")
    profiles = [_profile(i, raw) for i, raw in enumerate(data["profiles"])]
    if not profiles:
        raise ProfileError("profiles: at least one profile is required")
    slugs = [p.slug for p in profiles]
    for slug in slugs:
        if slugs.count(slug) > 1:
            raise ProfileError(f"profile {slug!r}: slug used twice")
    defaults = [p.slug for p in profiles if p.default]
    if len(defaults) > 1:
        raise ProfileError(f"profiles: only one may be the default (got {', '.join(defaults)})")
    return profiles


def load_profiles(path: str | Path) -> list[Profile]:
    """Read and validate a profiles.yaml."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML ({exc})") from exc
    return parse_profiles(data)


def default_profile(profiles: list[Profile]) -> Profile:
    return next((p for p in profiles if p.default), profiles[0])


def find_profile(profiles: list[Profile], slug: object) -> Profile:
    """The profile called ``slug`` (the default when None or empty); ProfileError if unknown
    or not a string (a spawn request's ``user_options`` are whatever JSON the caller sent)."""
    if slug is None or slug == "":
        return default_profile(profiles)
    if not isinstance(slug, str):
        raise ProfileError(
            f"profile: a profile's slug (a string), not {type(slug).__name__} "
            f"(choose one of {[p.slug for p in profiles]})"
        )
    for profile in profiles:
        if profile.slug == slug:
            return profile
    raise ProfileError(f"profile: no profile {slug!r} (choose one of {[p.slug for p in profiles]})")
