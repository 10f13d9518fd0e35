"""The reference case: the politeness data, shipped inside the package (a run never reads
outside it or downloads), and its six models."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from parity.spec.models import Model, make_model

POLITENESS_CATEGORICAL = ("subject", "gender", "scenario", "attitude")


def politeness_path() -> str:
    """Path of the shipped politeness CSV (84 rows, one frequency missing)."""
    return str(resources.files("parity") / "data" / "politeness_data.csv")


def politeness() -> pd.DataFrame:
    """The raw politeness frame, NA included: models drop incomplete rows themselves."""
    return pd.read_csv(politeness_path())


_SEED_FORMULAS: tuple[tuple[str, str], ...] = (
    ("additive", "frequency ~ gender + attitude"),
    ("no_intercept", "frequency ~ 0 + attitude + gender"),
    ("interaction", "frequency ~ gender * attitude"),
    ("subject_intercept", "frequency ~ gender + attitude + (1 | subject)"),
    ("subject_slope", "frequency ~ gender + attitude + (attitude | subject)"),
    ("crossed_slopes",
     "frequency ~ gender + attitude + (attitude | subject) + (attitude | scenario)"),
)


def seed_models() -> list[Model]:
    """The six politeness models of the reference case, in their canonical order."""
    return [make_model(n, f, POLITENESS_CATEGORICAL) for n, f in _SEED_FORMULAS]
