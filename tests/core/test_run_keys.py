"""Metric, param and tag names: the workbench refuses exactly what MLflow's own API refuses."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_metric_name, _validate_param_name

from jupyter_workbench.core.validation import run_key_problem

NAMES = [
    "loss", "val/acc top-1", "lr:warmup", "pérte", "Δloss", "mlflow.runName", "a.b-c_d",
    "acc@1", "loss!", "a\tb", "a//b", "a/", "./a", "a/./b", "a/../b", "a/..", "../x",
    "..x", "/a", ".", "a\\b", "100%",
]  # fmt: skip
# not compared: "x\n", which MLflow lets through (its pattern ends in "$") and the API refuses
# with every other control character


@pytest.mark.parametrize("validate", [_validate_metric_name, _validate_param_name])
def test_the_rule_is_mlflows(validate) -> None:
    for name in NAMES:
        try:
            validate(name)
            mlflow_refuses = False
        except MlflowException:
            mlflow_refuses = True
        assert (run_key_problem(name) is not None) == mlflow_refuses, name
