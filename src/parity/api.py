"""parity from Python: `parity.run(...)` in a notebook, `parity.load(...)` of a results.json.

A :class:`Run` wraps the one record of a run (:class:`~parity.schema.RunResults`): its
fits and comparison rows as pandas DataFrames (and every fit's numbers in broom.mixed's
`tidy()` layout), the summary matrix, an HTML view for Jupyter, and the same files the
CLI writes. It goes through the same pipeline as the CLI
and `assert_parity` (:func:`parity.pipeline.job.execute`), so it gets the same up-front checks.
"""

from __future__ import annotations

import html
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

from parity.errors import DataError, UsageError
from parity.schema import SCHEMA_VERSION, Fit, RunResults, VarianceComponent, values

# The columns of an empty Run's tables (a run of no fits still has them).
FIT_COLUMNS = ["model", "engine", "status", "reason", "n_obs", "n_dropped", "converged",
               "singular", "r_hat_max", "ess_bulk_min", "divergences", "source", "formula",
               "criterion", "loglik"]
ESTIMATE_COLUMNS = ["model", "engine", "quantity", "group", "term", "estimate", "std_error",
                    "lower", "upper"]
# Run.comparisons: comparison.csv's columns (`terms` and `unconverged` as tuples).
COMPARISON_COLUMNS = ["model", "engine", "reference", "quantity", "term", "value",
                      "reference_value", "tolerance", "verdict", "reason", "group", "level",
                      "unconverged", "terms", "label"]
# Run.tidy: broom.mixed's `tidy()` columns, after the engine and the model.
TIDY_COLUMNS = ["engine", "model", "effect", "group", "level", "term", "estimate",
                "std.error", "statistic", "df", "p.value", "conf.low", "conf.high"]
_TIDY_NUMBERS = ["estimate", "std.error", "statistic", "df", "p.value", "conf.low",
                 "conf.high"]
MODEL_SPEC = ('a model is a formula string such as "y ~ x + (1 | g)"; give one, a list '
              'of them, or a {name: formula} mapping')


class Run:
    """The result of one run: `fits` and `comparisons` as DataFrames, `tidy()` (the
    broom.mixed layout), `matrix()`, `report(dir)`, `to_json(path)`; `results` is the
    underlying record.

    `base` is the run's output folder (where its results.json was read from): saved
    draws are recorded relative to it, so a moved folder still finds them."""

    def __init__(self, results: RunResults, base: str | Path | None = None) -> None:
        self.results = results
        self.base = Path(base) if base is not None else None

    @property
    def fits(self) -> pd.DataFrame:
        """One row per fit: model, engine, status, reason, counts, diagnostics, source."""
        rows = []
        for f in self.results.fits:
            d = f.diagnostics
            rows.append({
                "model": f.model, "engine": f.label, "status": f.status, "reason": f.reason,
                "n_obs": f.n_obs, "n_dropped": f.n_dropped, "converged": d.converged,
                "singular": d.singular, "r_hat_max": d.r_hat_max,
                "ess_bulk_min": d.ess_bulk_min, "divergences": d.divergences,
                "source": ("recorded" if f.is_recorded else "cache" if f.from_cache
                           else "fit"),
                "formula": f.formula, "criterion": f.criterion,
                "loglik": f.fit_statistics.get("loglik"),
            })
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=FIT_COLUMNS)

    @property
    def estimates(self) -> pd.DataFrame:
        """One row per fixed effect and variance component of every fit (tidy)."""
        from parity.compare.quantities import PARAMETERS

        rows = [{"model": f.model, "engine": f.label, "quantity": v.quantity,
                 "group": v.group, "term": v.term, "estimate": v.estimate,
                 "std_error": v.uncertainty, "lower": v.lower, "upper": v.upper}
                for f in self.results.fits for v in values(f) if v.quantity in PARAMETERS]
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=ESTIMATE_COLUMNS)

    @property
    def group_effects(self) -> pd.DataFrame:
        """One row per group effect of every fit (lme4's `ranef()` layout, tidy): model,
        engine, group, level, term, estimate, std_error."""
        rows = [{"model": f.model, "engine": f.label, "group": g.group, "level": g.level,
                 "term": g.term, "estimate": g.estimate, "std_error": g.std_error}
                for f in (*self.results.fits, *self.results.reference_fits)
                for g in f.group_effects]
        return pd.DataFrame(rows, columns=["model", "engine", "group", "level", "term",
                                           "estimate", "std_error"])

    @property
    def comparisons(self) -> pd.DataFrame:
        """One row per comparison row, as in comparison.csv: after the row's own fields,
        `unconverged` (its fits that did not converge), `terms` (the coefficient names it
        is of) and `label` (the row as the reports name it, `SE(genderM)`)."""
        from parity.compare.quantities import row_name

        rows = [{**asdict(c), "label": row_name(c.quantity, c.term)}
                for c in self.results.comparisons]
        return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)

    def tidy(self) -> pd.DataFrame:
        """Every fit's numbers in broom.mixed's `tidy()` layout, so that an analyst can
        set them beside `broom.mixed::tidy(fit, effects = c("fixed", "ran_pars",
        "ran_vals"), conf.int = TRUE)` on the R side, row for row and column for column.

        Columns: `engine` (the fit's label, `lme4:independent` for a matched-structure
        refit) and `model`, then broom.mixed's `effect`, `group`, `level`, `term`,
        `estimate`, `std.error`, `statistic`, `df`, `p.value`, `conf.low`, `conf.high`.
        Per fit (those with numbers: status ok or unconverged; the run's fits, then the
        reference refits) come its fixed effects (`effect` "fixed", `term` the
        coefficient's name, the test and interval the engine reported), its variance
        components (`effect` "ran_pars", `group` the grouping factor or "Residual",
        `term` as broom.mixed names them: `sd__(Intercept)`,
        `cor__(Intercept).attitudepol`, `sd__Observation` for the residual SD; the
        interval where the fit has one) and its group effects (`effect` "ran_vals", with
        `level`, `estimate` and `std.error`, as `ranef()` gives them). A value a fit does
        not have is NaN (None for a text column)."""
        rows = [row for f in (*self.results.fits, *self.results.reference_fits)
                if f.has_numbers for row in _tidy_rows(f)]
        table = pd.DataFrame(rows, columns=TIDY_COLUMNS)
        table[_TIDY_NUMBERS] = table[_TIDY_NUMBERS].astype(float)
        return table

    def matrix(self) -> pd.DataFrame:
        """The summary matrix: one row per model (and all models), one column per engine
        pair, each cell `agree/comparable` (with the not-comparable count)."""
        from parity.reports.summary import summary_matrix

        models = [m["model"] for m in self.results.meta.get("models", [])]
        header, body = summary_matrix(self.results.comparisons, models)
        return pd.DataFrame([row[1:] for row in body], columns=header[1:],
                            index=pd.Index([row[0] for row in body], name=header[0]))

    def idata(self, model: str, engine: str = "bambi") -> Any:
        """The ArviZ InferenceData of `model` by `engine`: exactly the draws that were
        summarised and compared. Kept only when asked for (`keep_draws=True` here,
        `--save-draws` on the command line)."""
        fit = next((f for f in self.results.fits if f.model == model and f.label == engine),
                   None)
        if fit is None:
            raise KeyError(f"no fit of model {model!r} by {engine!r}")
        recorded = fit.provenance.settings.get("draws_file")
        path = self._draws_path(recorded) if recorded else None
        if path is None or not path.is_file():
            raise DataError(f"no draws of {model} / {engine}: {self._no_draws(fit, path)}")
        import arviz

        return arviz.from_netcdf(str(path))

    @staticmethod
    def _no_draws(fit: Fit, path: Path | None) -> str:
        """Why a fit's draws cannot be opened."""
        failed = [w for w in fit.diagnostics.warnings if w.startswith("draws not saved")]
        if failed:
            return failed[0]
        if path is not None:
            return f"{str(path)!r} is missing (moved apart from its results.json?)"
        return "they were not kept; run with keep_draws=True (or `parity run --save-draws`)"

    def _draws_path(self, recorded: str) -> Path:
        """A recorded draws file: relative to the run's folder, or absolute (results
        written before draws were recorded relative to it)."""
        path = Path(recorded)
        return path if path.is_absolute() or self.base is None else self.base / path

    def _draws_seen_from(self, folder: Path) -> RunResults:
        """The record with each draws file named as `folder` (where a results.json is
        being written) would see it: relative when inside it, else absolute, so the
        written file finds the draws wherever this Run's own folder is."""
        fits = tuple(self._moved(f, folder) for f in self.results.fits)
        return replace(self.results, fits=fits)

    def _moved(self, fit: Fit, folder: Path) -> Fit:
        """`fit` with its draws file named from `folder`."""
        recorded = fit.provenance.settings.get("draws_file")
        if not recorded or (self.base is None and not Path(recorded).is_absolute()):
            return fit  # relative to no folder this Run knows: written as it was read
        where = self._draws_path(recorded).resolve()
        try:
            name = where.relative_to(folder.resolve()).as_posix()
        except ValueError:
            name = str(where)
        settings = {**fit.provenance.settings, "draws_file": name}
        return replace(fit, provenance=replace(fit.provenance, settings=settings))

    def verdicts(self) -> dict[str, int]:
        """How many rows agree, disagree and are not comparable."""
        out = {"agree": 0, "disagree": 0, "not_comparable": 0}
        for c in self.results.comparisons:
            out[c.verdict] += 1
        return out

    def _repr_html_(self) -> str:
        counts = self.verdicts()
        failed = [f"{f.model} / {f.label}: {f.status}" for f in self.results.fits
                  if f.status != "ok"]
        head = (f"<p><b>parity</b>: {len(self.results.fits)} fits; "
                f"{counts['agree']} rows agree, {counts['disagree']} disagree, "
                f"{counts['not_comparable']} not comparable.</p>")
        if failed:
            head += "<p>Not fitted: " + html.escape("; ".join(failed)) + "</p>"
        return head + self.matrix().to_html(escape=True)

    def __repr__(self) -> str:
        counts = self.verdicts()
        return (f"<parity.Run: {len(self.results.fits)} fits, {counts['agree']} agree, "
                f"{counts['disagree']} disagree, {counts['not_comparable']} not comparable>")

    def to_json(self, path: str | Path) -> Path:
        """Write results.json (the CLI's layout) to `path`; saved draws are named
        relative to its folder when they lie inside it."""
        path = Path(path)
        return self._draws_seen_from(path.parent).write(path)

    def report(self, directory: str | Path) -> dict[str, Path]:
        """Write results.json and the CLI's reports (Markdown, HTML, CSV, figures) under
        `directory`; return their paths by kind."""
        from parity.pipeline.job import write_run_reports
        from parity.pipeline.outdir import RESULTS_NAME, claimed

        with claimed(Path(directory)) as out:
            paths = {"results": self.to_json(out / RESULTS_NAME)}
            paths.update(write_run_reports(out, self.results))
        return paths


def _tidy_term(vc: VarianceComponent) -> str:
    """A variance component as broom.mixed names it: `sd__(Intercept)`,
    `cor__(Intercept).attitudepol`, and `sd__Observation` for the residual SD."""
    if vc.kind == "corr":
        return f"cor__{vc.term}.{vc.term2}"
    return f"sd__{vc.term if vc.term is not None else 'Observation'}"


def _tidy_rows(fit: Fit) -> list[dict[str, Any]]:
    """One fit's rows of :meth:`Run.tidy`."""
    head = {"engine": fit.label, "model": fit.model}
    rows = [{**head, "effect": "fixed", "group": None, "level": None, "term": fe.term,
             "estimate": fe.estimate, "std.error": fe.std_error, "statistic": fe.statistic,
             "df": fe.df, "p.value": fe.p_value, "conf.low": fe.lower,
             "conf.high": fe.upper} for fe in fit.fixed_effects]
    rows += [{**head, "effect": "ran_pars", "group": vc.group, "level": None,
              "term": _tidy_term(vc), "estimate": vc.estimate, "std.error": vc.std_error,
              "statistic": None, "df": None, "p.value": None, "conf.low": vc.lower,
              "conf.high": vc.upper} for vc in fit.variance_components]
    rows += [{**head, "effect": "ran_vals", "group": g.group, "level": g.level,
              "term": g.term, "estimate": g.estimate, "std.error": g.std_error,
              "statistic": None, "df": None, "p.value": None, "conf.low": None,
              "conf.high": None} for g in fit.group_effects]
    return rows


def _named(formulas: Any) -> list[tuple[str, str]]:
    """(name, formula) of each model asked for; anything else is a one-line UsageError
    saying what a model is, before any data is read."""
    if isinstance(formulas, str):
        named: list[tuple[Any, Any]] = [("m1", formulas)]
    elif isinstance(formulas, Mapping):
        named = [(str(k), v) for k, v in formulas.items()]
    elif isinstance(formulas, Iterable):
        named = [(f"m{i}", f) for i, f in enumerate(formulas, start=1)]
    else:
        raise UsageError(f"parity.run(): {type(formulas).__name__} is not a model; "
                         f"{MODEL_SPEC}")
    if not named:
        raise UsageError(f"parity.run(): no models given; {MODEL_SPEC}")
    for name, formula in named:
        if not name or not isinstance(formula, str) or not formula.strip():
            raise UsageError(f"parity.run(): model {name!r} is {formula!r}, not a formula; "
                             f"{MODEL_SPEC}")
    return named


def run(formulas: str | Sequence[str] | Mapping[str, str], data: pd.DataFrame | str | Path,
        categorical: Iterable[str] | None = None, engines: str | Sequence[str] | None = None,
        *, tolerances: str | Path | None = None, cache: bool = True, keep_draws: bool = False,
        reml: bool = True, family: str = "gaussian", trials: str | None = None,
        weights: str | None = None, compare_unconverged: bool = False,
        allow_loose_tolerances: bool = False, max_minutes: float | None = None,
        priors: str | Path | Mapping[str, Any] | None = None,
        **sampler_settings: Any) -> Run:
    """Fit `formulas` on `data` with `engines` (default: lme4, statsmodels and bambi, as
    `parity run`) and compare them, as `parity run` does, without writing anything.

    `formulas` is one formula, a list (named m1, m2, …) or a `{name: formula}` mapping;
    `data` a DataFrame or a CSV path; `engines` a list of names, or one string of names
    separated by commas as `--engines` takes them; sampler settings (`draws`, `tune`,
    `chains`, `seed`, `target_accept`, `interval`, `nagq`) are checked like the CLI's
    options. With `keep_draws`, the posterior draws are kept (in a temporary folder) for
    :meth:`Run.idata`. `reml=False` fits lme4 and statsmodels by maximum likelihood;
    `family` ("binomial", "poisson"), `trials` (a binomial count's trials column) and
    `weights` (a column of prior weights, as lme4's `weights`; engines without them
    refuse the model) apply to every formula. A fit that did not converge has rows that
    say so and are not compared, unless `compare_unconverged` (as `--compare-unconverged`).
    A `tolerances` file that loosens a default rule more than 10x is refused unless
    `allow_loose_tolerances` (as `--allow-loose-tolerances`). A fit whose engine
    estimates it over half this machine's memory, or longer than `max_minutes` (as
    `--max-minutes`; default 30), is `unsupported` with the estimate as its reason.
    `priors` sets the Bayesian engines' priors (as `--priors FILE`): a TOML file's path,
    or the same document as a mapping (`{"sd": {"subject": {"dist": "HalfNormal",
    "sigma": 5}}}`); by default Bambi's own."""
    from parity.compare.tolerances import check_loosening, load_policy
    from parity.engines import DEFAULT_ENGINES
    from parity.engines.budget import minutes_problem
    from parity.inputs.request import python_request
    from parity.pipeline.cache import FitCache
    from parity.pipeline.job import execute
    from parity.pipeline.outdir import DRAWS_DIR
    from parity.testing import engine_names, settings_from

    named = _named(formulas)
    chosen = engine_names(engines, "parity.run") if engines is not None else ()
    settings = settings_from(sampler_settings, reml, "parity.run")
    if not isinstance(compare_unconverged, bool):
        raise UsageError(f"parity.run(): compare_unconverged must be True or False, not "
                         f"{compare_unconverged!r}")
    problem = minutes_problem(max_minutes)
    if problem:
        raise UsageError(f"parity.run(): max_minutes {problem}, not {max_minutes!r}")
    if priors is not None:
        from parity.spec.priors import load_priors, parse_priors

        document = (parse_priors(priors, "parity.run(priors=...)")
                    if isinstance(priors, Mapping) else load_priors(priors))
        settings = replace(settings, priors=document.to_json())
    base = None
    if keep_draws:  # laid out as `parity run --save-draws` lays out its --out folder
        base = Path(tempfile.mkdtemp(prefix="parity-draws-"))
        settings = replace(settings, save_draws=str(base / DRAWS_DIR))
    if not isinstance(allow_loose_tolerances, bool):
        raise UsageError(f"parity.run(): allow_loose_tolerances must be True or False, not "
                         f"{allow_loose_tolerances!r}")
    check_loosening(tolerances, allow_loose_tolerances, "allow_loose_tolerances=True")
    policy = load_policy(Path(tolerances) if tolerances is not None else None)
    request = python_request(named, data, tuple(categorical or ()),
                             tuple(chosen or DEFAULT_ENGINES), settings, policy, family, trials,
                             weights)
    results = execute(request.models, request.frame, request.engines, request.settings,
                      request.policy, FitCache(enabled=cache),
                      compare_unconverged=compare_unconverged, max_minutes=max_minutes)
    return Run(results, base)


def load(path: str | Path) -> Run:
    """A results.json (or the directory holding one) written by `parity run` or
    `Run.to_json`, back into a :class:`Run`."""
    from parity.compare.diff import load_results

    path = Path(path)
    doc = load_results(path)
    try:
        return Run(RunResults.from_dict(doc), path if path.is_dir() else path.parent)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{str(path)!r} is not a well-formed parity results file "
                        f"(schema {SCHEMA_VERSION}): {type(exc).__name__}: {exc}") from None
