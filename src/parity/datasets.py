"""Data sets shipped inside the package, so a run never reads outside it or downloads."""

from __future__ import annotations

from importlib import resources

import pandas as pd

POLITENESS_CATEGORICAL = ("subject", "gender", "scenario", "attitude")


def politeness_path() -> str:
    """Path of the shipped politeness CSV (84 rows, one frequency missing)."""
    return str(resources.files("parity") / "data" / "politeness_data.csv")


def politeness() -> pd.DataFrame:
    """The raw politeness frame, NA included: models drop incomplete rows themselves."""
    return pd.read_csv(politeness_path())
