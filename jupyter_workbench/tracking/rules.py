"""Which project permission each MLflow route needs; every route not listed here is refused.

A rule says how much of a role the caller needs on the project that owns the object (``read``:
viewer, ``write``: editor, ``delete`` and ``promote``: admin, ``open``: any signed-in user) and
how the proxy finds that project from the request (``locate``). The list is deny-by-default:
a route MLflow adds in a new release is refused until someone maps it here, and a test walks
MLflow's own route list to prove that every route is either mapped or refused.

A rule also names the audit event that a successful call records, for the changes someone
may later ask "who did this?" of (deletions, renames, registry versions and aliases); the high-
volume run writes (metrics, params, tags) are the runs' own record and are not audited.

A write that links its object to other runs or logged models (a run's inputs and outputs, a
logged model's source run) names them in ``links``: each must be one the caller may read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.access import Role

LEVELS: dict[str, Role] = {
    "read": Role.VIEWER,
    "write": Role.EDITOR,
    "delete": Role.ADMIN,
    "promote": Role.ADMIN,
}


@dataclass(frozen=True)
class Rule:
    level: str  # read | write | delete | promote | open
    locate: str  # see Locators in proxy.py
    field: str = ""  # the request field naming the object, where it varies
    audit: str = ""  # the audit event a successful call records ("" for none)
    # other objects the body links to, each one the caller must be able to read:
    # (list field holding them or "" for the body itself, id field, "run" | "logged_model")
    links: tuple[tuple[str, str, str], ...] = ()


R = Rule
# (method, route) -> rule. Routes are MLflow's, after its API prefix ('/api/2.0/mlflow/' and the
# UI's '/ajax-api/2.0/mlflow/' share one entry) or, for the others, the full path.
API_RULES: dict[tuple[str, str], Rule] = {
    # experiments
    ("POST", "experiments/create"): R("write", "new_experiment"),
    ("GET", "experiments/get"): R("read", "experiment", "experiment_id"),
    ("GET", "experiments/get-by-name"): R("read", "experiment_name", "experiment_name"),
    ("GET", "experiments/search"): R("read", "search_experiments"),
    ("POST", "experiments/search"): R("read", "search_experiments"),
    ("POST", "experiments/update"): R("write", "experiment", "experiment_id", "experiment.rename"),
    ("POST", "experiments/delete"): R("delete", "experiment", "experiment_id", "experiment.delete"),
    ("POST", "experiments/restore"): R(
        "delete", "experiment", "experiment_id", "experiment.restore"
    ),
    ("POST", "experiments/set-experiment-tag"): R("write", "experiment", "experiment_id"),
    ("POST", "experiments/delete-experiment-tag"): R("write", "experiment", "experiment_id"),
    # runs
    ("POST", "runs/create"): R("write", "experiment", "experiment_id"),
    ("GET", "runs/get"): R("read", "run"),
    ("POST", "runs/update"): R("write", "run"),
    ("POST", "runs/delete"): R("delete", "run", audit="run.delete"),
    ("POST", "runs/restore"): R("delete", "run", audit="run.restore"),
    ("POST", "runs/log-metric"): R("write", "run"),
    ("POST", "runs/log-parameter"): R("write", "run"),
    ("POST", "runs/log-batch"): R("write", "run"),
    ("POST", "runs/log-model"): R("write", "run"),
    ("POST", "runs/log-inputs"): R("write", "run", links=(("models", "model_id", "logged_model"),)),
    ("POST", "runs/outputs"): R("write", "run", links=(("models", "model_id", "logged_model"),)),
    ("POST", "runs/set-tag"): R("write", "run"),
    ("POST", "runs/delete-tag"): R("write", "run"),
    ("POST", "runs/search"): R("read", "experiments", "experiment_ids"),
    ("GET", "metrics/get-history"): R("read", "run"),
    ("GET", "metrics/get-history-bulk-interval"): R("read", "runs", "run_ids"),
    ("GET", "artifacts/list"): R("read", "run"),
    # logged models (MLflow 3 log_model)
    ("POST", "logged-models"): R(
        "write", "experiment", "experiment_id", links=(("", "source_run_id", "run"),)
    ),
    ("POST", "logged-models/search"): R("read", "experiments", "experiment_ids"),
    ("GET", "logged-models/<model_id>"): R("read", "logged_model"),
    ("PATCH", "logged-models/<model_id>"): R("write", "logged_model"),
    ("DELETE", "logged-models/<model_id>"): R(
        "delete", "logged_model", audit="logged_model.delete"
    ),
    ("POST", "logged-models/<model_id>/params"): R("write", "logged_model"),
    ("PATCH", "logged-models/<model_id>/tags"): R("write", "logged_model"),
    ("DELETE", "logged-models/<model_id>/tags/<tag_key>"): R("write", "logged_model"),
    ("GET", "logged-models/<model_id>/artifacts/directories"): R("read", "logged_model"),
    # the model registry
    ("POST", "registered-models/create"): R("write", "new_model"),
    ("GET", "registered-models/get"): R("read", "model", "name"),
    ("GET", "registered-models/search"): R("read", "search_models"),
    ("POST", "registered-models/rename"): R("write", "model", "name"),
    ("PATCH", "registered-models/update"): R("write", "model", "name", "model.update"),
    ("DELETE", "registered-models/delete"): R("delete", "model", "name"),
    ("POST", "registered-models/set-tag"): R("write", "model", "name"),
    ("DELETE", "registered-models/delete-tag"): R("write", "model", "name"),
    ("GET", "registered-models/get-latest-versions"): R("read", "model", "name"),
    ("POST", "registered-models/get-latest-versions"): R("read", "model", "name"),
    ("GET", "registered-models/alias"): R("read", "model", "name"),
    ("POST", "registered-models/alias"): R("write", "model_alias", "name", "model.alias_set"),
    ("DELETE", "registered-models/alias"): R("write", "model_alias", "name", "model.alias_delete"),
    ("POST", "model-versions/create"): R("write", "model", "name", "model.version_create"),
    ("GET", "model-versions/get"): R("read", "model", "name"),
    ("GET", "model-versions/search"): R("read", "search_model_versions"),
    ("PATCH", "model-versions/update"): R("write", "model", "name", "model.version_update"),
    ("DELETE", "model-versions/delete"): R("delete", "model", "name", "model.version_delete"),
    ("GET", "model-versions/get-download-uri"): R("read", "model", "name"),
    ("POST", "model-versions/set-tag"): R("write", "model", "name"),
    ("DELETE", "model-versions/delete-tag"): R("write", "model", "name"),
    ("POST", "model-versions/transition-stage"): R(
        "promote", "model", "name", "model.version_stage"
    ),
}

# Proxied artifacts: the first path segment is the experiment id (mlflow-artifacts:/<exp>/...).
ARTIFACT_RULES: dict[tuple[str, str], Rule] = {
    ("GET", "artifacts"): R("read", "artifact_path", "path"),  # listing: ?path=<exp>/...
    ("GET", "artifacts/<path>"): R("read", "artifact_path"),
    ("PUT", "artifacts/<path>"): R("write", "artifact_path"),
    ("DELETE", "artifacts/<path>"): R("delete", "artifact_path", audit="artifact.delete"),
    ("POST", "mpu/create/<path>"): R("write", "artifact_path"),
    ("POST", "mpu/complete/<path>"): R("write", "artifact_path"),
    ("POST", "mpu/abort/<path>"): R("write", "artifact_path"),
}

# Other paths (the web UI and its helpers).
OTHER_RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/"): R("open", "none"),
    ("GET", "/health"): R("open", "none"),
    ("GET", "/version"): R("open", "none"),
    ("GET", "/static-files/<path>"): R("open", "none"),
    ("GET", "/build/<path>"): R("open", "none"),
    ("GET", "/get-artifact"): R("read", "run"),
    ("GET", "/model-versions/get-artifact"): R("read", "model", "name"),
    ("GET", "/api/3.0/mlflow/server-info"): R("open", "none"),
    ("POST", "/graphql"): R("read", "graphql"),
    ("GET", "/ajax-api/3.0/mlflow/server-info"): R("open", "none"),
}

API_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/")
ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/")
_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def _compile(
    table: dict[tuple[str, str], Rule],
) -> list[tuple[str, re.Pattern[str], Rule, list[str]]]:
    compiled = []
    for (method, route), rule in table.items():
        names = _PARAM.findall(route)
        parts = _PARAM.split(route)  # literal, name, literal, name, ... literal
        regex = "".join(
            re.escape(part) if i % 2 == 0 else ("(.+)" if part == "path" else "([^/]+)")
            for i, part in enumerate(parts)
        )
        pattern = f"^{regex}$"
        compiled.append((method, re.compile(pattern), rule, names))
    return compiled


_API = _compile(API_RULES)
_ARTIFACTS = _compile(ARTIFACT_RULES)
_OTHER = _compile(OTHER_RULES)


@dataclass(frozen=True)
class Match:
    rule: Rule
    route: str  # the table key's route, for logs and errors
    params: dict[str, str]


def match(method: str, path: str) -> Match | None:
    """The rule for ``method path`` (a path as MLflow sees it), or None: refused."""
    for prefixes, table in ((API_PREFIXES, _API), (ARTIFACT_PREFIXES, _ARTIFACTS)):
        for prefix in prefixes:
            if path.startswith(prefix):
                return _find(table, method, path[len(prefix) :])
    return _find(_OTHER, method, path)


def _find(
    table: list[tuple[str, re.Pattern[str], Rule, list[str]]], method: str, tail: str
) -> Match | None:
    for rule_method, pattern, rule, names in table:
        if rule_method != method:
            continue
        found = pattern.match(tail)
        if found:
            return Match(rule, pattern.pattern, dict(zip(names, found.groups(), strict=True)))
    return None


# The web UI's GraphQL queries: each allowed root field, and the input key naming what it reads.
GRAPHQL_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mlflowGetRun": ("run", ("runId", "runUuid")),
    "mlflowListArtifacts": ("run", ("runId", "runUuid")),
    "mlflowGetExperiment": ("experiment", ("experimentId",)),
    "mlflowSearchRuns": ("experiments", ("experimentIds",)),
    "mlflowGetMetricHistoryBulkInterval": ("runs", ("runIds",)),
}
