"""MLflow search filters naming a value exactly.

MLflow's filter strings have no escapes: a value is quoted with ``'`` or ``"``, and cannot hold
the quote around it. A name holding both is matched with ``LIKE`` (``_`` in place of each
``'``), which may also match other names: the caller keeps the exact one.
"""

from __future__ import annotations


def name_is(name: str) -> str:
    """The filter for a name equal to ``name`` (check the matches: see above)."""
    if "'" not in name:
        return f"name='{name}'"
    if '"' not in name:
        return f'name="{name}"'
    return f"name LIKE '{name.replace(chr(39), '_')}'"
