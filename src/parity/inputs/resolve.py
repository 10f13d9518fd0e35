"""What a run reads: the data and the models, from options or a models.toml.

Everything that can be checked without fitting is checked here, in an order chosen so
that nothing an analyst typed runs before it is known to be safe: formulas are parsed
by parity's grammar first, the R data set name is checked next, and only then is data
read (a CSV by pandas, an R data set by Rscript with arguments, never a shell).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from parity.errors import DataError, FormulaError, UsageError
from parity.inputs.config import RunConfig, load_config
from parity.inputs.seed import seed_models
from parity.spec.columns import column_hint, describe_columns, rename_advice, unusable_columns
from parity.spec.family import check_family
from parity.spec.models import Model, check_weights_name, make_model, select


@dataclass(frozen=True)
class Inputs:
    """Data, models and the run options a models.toml contributed (CLI applied on top)."""

    frame: pd.DataFrame
    models: list[Model]
    source: str
    engines: tuple[str, ...] | None = None
    sampler: dict[str, Any] = field(default_factory=dict)
    tolerances: dict[str, Any] = field(default_factory=dict)
    tolerances_source: str = ""
    reml: bool | None = None  # the models.toml's criterion, where it names one


def read_csv(path: Path, text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """A CSV file as pandas reads it; every way it can be unusable is one DataError.

    `text_columns` (categorical and grouping columns) are read as text before anything
    else touches them: read as numbers, ids `01` and `1` would become one group, and
    16-digit ids in a column with a blank cell would become floats and collapse."""
    where = repr(str(path))
    if not path.exists():
        raise DataError(f"data file {where} not found")
    if not path.is_file():
        raise DataError(f"data file {where} is not a file")
    header = _header(path)
    repeated = [c for c, n in Counter(header).items() if n > 1]
    if repeated:
        raise DataError(f"data file {where} has more than one column named "
                        f"{', '.join(map(repr, repeated))}; column names must be unique")
    text = {c: str for c in text_columns if c in header}
    try:
        frame = pd.read_csv(path, dtype=text or None)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {where} is empty") from None
    except PermissionError:
        raise DataError(f"data file {where} cannot be read (permission denied)") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        why = " ".join(str(exc).split())
        raise DataError(f"data file {where} is not a readable CSV: {why}") from None
    except OSError as exc:
        raise DataError(f"data file {where} cannot be read: {exc.strerror or exc}") from None
    if frame.empty:
        raise DataError(f"data file {where} has no rows")
    if frame.shape[1] == 1 and ";" in str(frame.columns[0]):
        # The header is not quoted: the file may be anything a config named.
        raise DataError(f"data file {where} has one column, whose name holds ';'; it "
                        "looks separated by ';', and parity reads comma-separated files")
    return frame


def read_data(data: pd.DataFrame | str | Path,
              text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Data given from Python: a DataFrame as it is, or a CSV path read as `read_csv`
    reads it (its `text_columns` as text)."""
    if isinstance(data, pd.DataFrame):
        return data
    return read_csv(Path(data), text_columns)


def _header(path: Path | None) -> list[str]:
    """The column names of a CSV as written (pandas would rename a repeated `Days` to
    `Days.1`); never an error of its own."""
    if path is None:
        return []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return [c.strip() for c in next(csv.reader(fh), [])]
    except Exception:
        return []


Named = tuple[str, str, str, "str | None", "str | None"]  # name, formula, family, trials, weights


def _parse(named: Sequence[Named], header: list[str]) -> list[Model]:
    """Every formula through the grammar, before any data is read or R is started."""
    models = []
    for name, formula, family, trials, weights in named:
        try:
            models.append(make_model(name, formula, family=family, trials=trials,
                                     weights=weights))
        except FormulaError as exc:
            hint = column_hint(formula, header)
            if hint is None:
                raise
            raise FormulaError(f"{exc.args[0]}; {hint}") from None
    return models


def _named_models(args: Any, config: RunConfig | None, has_data: bool) -> list[Named]:
    formulas = getattr(args, "formula", None)
    wanted = getattr(args, "models", None)
    family = getattr(args, "family", None)
    trials = getattr(args, "trials", None)
    weights = getattr(args, "weights", None)
    if (family is not None or trials is not None or weights is not None) and not formulas:
        raise UsageError("--family, --trials and --weights apply to --formula models; a "
                         "models.toml names each model's family and weights in its table")
    if formulas:
        if not has_data:
            raise UsageError("--formula needs --data or --r-dataset "
                             "(the seed models use the shipped data)")
        if wanted:
            raise UsageError("--models names seed or config models; with --formula, "
                             "give only formulas")
        fam, tri = check_family(family or "gaussian", trials)
        wts = check_weights_name(weights)
        return [(f"m{i}", f, fam, tri, wts) for i, f in enumerate(formulas, start=1)]
    if config is not None:
        named: list[Named] = [(n, f, *config.families.get(n, ("gaussian", None, None)))
                              for n, f in config.models.items()]
        if wanted:
            unknown = [n for n in wanted if n not in config.models]
            if unknown:
                raise UsageError(f"unknown model(s) {', '.join(unknown)} in {config.path}; "
                                 f"known: {', '.join(config.models)}")
            named = [entry for entry in named if entry[0] in wanted]
        return named
    if has_data:
        raise UsageError("--data and --r-dataset need at least one --formula")
    return [(m.name, m.formula, m.family, m.trials, m.weights)
            for m in select(seed_models(), wanted)]


def _check_categorical(frame: pd.DataFrame, categorical: Sequence[str]) -> None:
    missing = [c for c in categorical if c not in frame.columns]
    if missing:
        bad = unusable_columns(frame.columns) if frame.shape[1] > 1 else []
        advice = f"; columns a formula cannot name: {rename_advice(bad)}" if bad else ""
        raise DataError(f"categorical column(s) {', '.join(map(repr, missing))} not in the "
                        f"data ({describe_columns(frame.columns)}){advice}")


def resolve_inputs(args: Any) -> Inputs:
    """Data and models from the parsed options (`config`, `data`, `r_dataset`,
    `formula`, `models`, `categorical`); options given beside --config override it."""
    from parity.inputs.r_datasets import load_r_dataset, parse_r_dataset

    config = load_config(args.config) if getattr(args, "config", None) else None
    data: Path | None = getattr(args, "data", None)
    r_dataset: str | None = getattr(args, "r_dataset", None)
    if data is not None and r_dataset is not None:
        raise UsageError("give --data or --r-dataset, not both")
    if data is None and r_dataset is None and config is not None:
        data, r_dataset = config.data, config.r_dataset
    if r_dataset is not None:
        parse_r_dataset(r_dataset)
    named = _named_models(args, config, data is not None or r_dataset is not None)
    models = _parse(named, _header(data))
    categorical = list(args.categorical if getattr(args, "categorical", None) is not None
                       else (config.categorical if config else ()))
    if data is not None:
        text = [*categorical, *(g for m in models for g in m.spec.grouping_factors)]
        frame, source = read_csv(data, text), str(data)
    elif r_dataset is not None:
        loaded = load_r_dataset(r_dataset)
        frame, source = loaded.frame, loaded.name
        categorical += [c for c in loaded.factors if c not in categorical]
    else:
        from parity.inputs.seed import politeness

        names = {entry[0] for entry in named}
        return Inputs(politeness(), [m for m in seed_models() if m.name in names],
                      "politeness (shipped)", *_config_parts(config))
    _check_categorical(frame, categorical)
    models = [replace(m, categorical=tuple(categorical)) for m in models]
    return Inputs(frame, models, source, *_config_parts(config))


def _config_parts(config: RunConfig | None) -> tuple[Any, ...]:
    if config is None:
        return (None, {}, {}, "", None)
    return (config.engines, dict(config.sampler), dict(config.tolerances),
            f"{config.path} [tolerances]", config.reml)
