"""The request a command makes, resolved once: data, models, engines, settings, policy.

Every way a setting reaches a run meets here, in one order: `Settings`' defaults, then a
models.toml (`reml`, its `[sampler]` table), then the command's options, each given
option winning over the file. Options are range-checked (:meth:`Settings.check`, in the
CLI's words) before any data is read, so a mistyped `--draws 0` costs nothing; the file's
values were checked as it was read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parity.compare.tolerances import Policy, load_policy
from parity.engines import DEFAULT_ENGINES, check_engines
from parity.inputs.resolve import Inputs, read_data, resolve_inputs
from parity.settings import OPTION_SETTINGS, Settings, as_option
from parity.spec.priors import check_names, load_priors, priors_of

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from parity.spec.models import Model

# Settings a command takes as options: the sampler's, the criterion (`--reml`/`--ml`,
# None when neither is given) and lme4's quadrature points.
OPTION_NAMES = (*OPTION_SETTINGS, "reml", "nagq")


@dataclass(frozen=True)
class RunRequest:
    """What a command fits and how: every part resolved and checked, nothing fitted.

    `source` names the data (a file, an R data set, or the shipped politeness data)."""

    frame: pd.DataFrame
    models: tuple[Model, ...]
    source: str
    engines: tuple[str, ...]
    settings: Settings
    policy: Policy


def option_settings(args: Any) -> dict[str, Any]:
    """The settings given as options (an option not given is None, and absent here),
    checked in the CLI's words (`--nagq must be from 0 (nAGQ = 0) to 25`)."""
    given = {name: getattr(args, name) for name in OPTION_NAMES
             if getattr(args, name, None) is not None}
    Settings(**given).check(as_option)
    return given


def merged_settings(inputs: Inputs, options: Mapping[str, Any],
                    save_draws: str | None = None) -> Settings:
    """Options over the models.toml over the defaults; `save_draws` as the command
    placed it."""
    config: dict[str, Any] = dict(inputs.sampler)
    if inputs.reml is not None:
        config["reml"] = inputs.reml
    return Settings(**{**config, **options, "save_draws": save_draws}).check()


def resolve_request(args: Any, default_engines: Sequence[str] = DEFAULT_ENGINES,
                    save_draws: str | None = None, config_engines: bool = True) -> RunRequest:
    """The request of parsed options (`parity run`, `study`, `record`): engine names
    and option settings first, then the models.toml, formulas and data
    (:func:`resolve_inputs`), then the settings merged and the tolerance policy loaded
    (`--tolerances` over the models.toml's `[tolerances]` over the project's). Engines
    are `--engines`, else the models.toml's (unless `config_engines` is False, as for
    `parity record`, whose engines are only those it is told to record), else
    `default_engines`."""
    check_engines(getattr(args, "engines", None) or ())
    options = option_settings(args)
    if getattr(args, "priors", None) is not None:
        options["priors"] = load_priors(args.priors).to_json()
    inputs = resolve_inputs(args)
    from_config = inputs.engines if config_engines else None
    engines = tuple(getattr(args, "engines", None) or from_config or default_engines)
    policy = load_policy(getattr(args, "tolerances", None), overrides=inputs.tolerances,
                         overrides_source=inputs.tolerances_source)
    settings = merged_settings(inputs, options, save_draws)
    check_names(priors_of(settings.priors), [m.spec for m in inputs.models])
    return RunRequest(inputs.frame, tuple(inputs.models), inputs.source, engines,
                      settings, policy)



def python_request(named: Sequence[tuple[str, str]], data: pd.DataFrame | str | Path,
                   categorical: Sequence[str], engines: Sequence[str], settings: Settings,
                   policy: Policy, family: str = "gaussian",
                   trials: str | None = None, weights: str | None = None) -> RunRequest:
    """The request of a Python call (`parity.run`, `assert_parity`): each (name, formula)
    parsed as a model of `family` (with `weights`, if given) before the data is read (a
    CSV's categorical and grouping columns as text), and `settings` checked by the
    caller in its own words."""
    from parity.spec.models import make_model

    models = tuple(make_model(name, text, categorical, family, trials, weights)
                   for name, text in named)
    grouping = [g for m in models for g in m.spec.grouping_factors]
    frame = read_data(data, [*categorical, *grouping])
    source = "a DataFrame" if frame is data else str(data)
    check_names(priors_of(settings.priors), [m.spec for m in models])
    return RunRequest(frame, models, source, check_engines(engines), settings, policy)
