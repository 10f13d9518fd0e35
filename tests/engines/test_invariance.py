"""The invariance (metamorphic) suite, over every registered engine.

A fit must not move when the rows are permuted, the group levels relabelled (numbers or
text, any order), the columns renamed, or a factor's non-reference levels reordered.
Hypothesis draws the permutations, labels and names. The suite is parametrised over
`parity.engines.ENGINE_NAMES`, so an engine joins it by being registered.

What is held, by kind of engine:
- frequentist, regular fit: the value of the optimum (log-likelihood) to 1e-9 relative,
  and every estimate, SE and variance component to the engine's `invariance_rtol`: 1e-6
  relative, except lme4, whose default optimiser stops, on a flat criterion, at a point
  that depends on floating-point noise (up to 1e-4 relative measured; it is held to
  1e-3, see `Lme4Engine.invariance_rtol`);
- frequentist, singular fit: the optimum is flat along the boundary, so the components
  on it are not identified, and the optimiser stops anywhere within its tolerance of it
  (lme4 put one SD at 0.018 or 0.03 on a residual SD of 29 for the same data, rows
  permuted). What holds is the value of the optimum (log-likelihood to 1e-6 relative),
  the singular flag, each component on the boundary staying near it (within 10 times the
  boundary thresholds), the fixed effects to 1e-3 of their SE, and SEs, SDs and
  correlations off the boundary to the frequentist-frequentist policy (1e-3 relative,
  1e-3 absolute for correlations);
- Bayesian: the same seed does not give the same draws once the likelihood's terms are
  summed in another order, so posterior means are held within 5 Monte-Carlo standard
  errors of a difference (posterior SD x sqrt(2 / ESS)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import engine_missing, r_missing
from parity.boundary import BOUNDARY_CORR, BOUNDARY_SD, residual_scale
from parity.compare.quantities import QUANTITY_SPECS
from parity.engines import ENGINE_NAMES, engine_kind, load_engine
from parity.engines.invariance import (
    Case,
    Key,
    Transformed,
    criterion_difference,
    differences,
    estimates,
    permute_rows,
    relabel,
    rename_columns,
    reorder_levels,
    sleepstudy_like,
)
from parity.engines.limits import BAMBI_RESERVED
from parity.engines.statsmodels import StatsmodelsEngine
from parity.inputs.seed import POLITENESS_CATEGORICAL, politeness
from parity.rows.prepare import prepare
from parity.schema import Fit
from parity.settings import Settings
from parity.spec.grammar import is_plain_name
from parity.spec.models import make_model
from support import SAMPLER, Workers, worker_pool

SLEEP = sleepstudy_like()
POLITE = politeness()

# Regular fits (no variance component on the boundary), one per path through each engine:
# OLS / lm, statsmodels' single correlated block, its same-factor and crossed variance
# components.
CASES = {
    "fixed_only": Case("fixed_only", SLEEP, "y ~ f * x"),
    "intercept_factor": Case("intercept_factor", SLEEP, "y ~ f + x + (1 | g)"),
    "independent": Case("independent", SLEEP, "y ~ x + (x || g)"),
    "correlated": Case("correlated", SLEEP, "y ~ x + (x | g)"),
    "crossed": Case("crossed", SLEEP, "y ~ x + f + (1 | g) + (x || h)"),
    "politeness_intercept": Case("politeness_intercept", POLITE,
                                 "frequency ~ gender + attitude + (1 | subject)",
                                 POLITENESS_CATEGORICAL),
    # Derived columns: renaming reaches inside the transforms, and the fit's names
    # (`log(y)`, `poly(x, 2)1`) are read back through them.
    "transformed": Case("transformed", SLEEP, "log(y) ~ poly(x, 2) + f + (1 | g)"),
}
# The seed's singular fits (lme4: corr = 1), and a `||` of a factor.
SINGULAR = {
    "politeness_slope": Case("politeness_slope", POLITE,
                             "frequency ~ gender + attitude + (attitude | subject)",
                             POLITENESS_CATEGORICAL),
    "politeness_independent": Case("politeness_independent", POLITE,
                                   "frequency ~ gender + attitude + (attitude || subject)",
                                   POLITENESS_CATEGORICAL),
}
# For each case: a grouping factor to relabel and a fixed factor to reorder.
ROLES: dict[str, tuple[str | None, str | None]] = {
    "fixed_only": (None, "f"), "intercept_factor": ("g", "f"),
    "independent": ("g", None), "correlated": ("g", None),
    "crossed": ("h", "f"), "politeness_intercept": ("subject", "attitude"),
    "transformed": ("g", "f"),
    "politeness_slope": ("subject", "attitude"),
    "politeness_independent": ("subject", "attitude"),
}
BAMBI_CASES = ("intercept_factor", "crossed")


def missing(engine: str) -> str | None:
    return engine_missing(engine)


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    yield from worker_pool()


# --- Hypothesis strategies: the presentations of one data set ----------------------------

def relabellings(n_levels: int) -> st.SearchStrategy[list[object]]:
    """New labels for n levels: numbers, text, zero-padded or unpadded numbers as text
    (whose text order is not their numeric order: "10" < "2"), sparse numbers."""
    def build(scheme: str, order: list[int], stride: int) -> list[object]:
        if scheme == "numbers":
            return [k + 1 for k in order]
        if scheme == "sparse":
            return [(k + 1) * stride for k in order]
        if scheme == "digits_as_text":
            return [str(k + 1) for k in order]
        if scheme == "padded":
            return [f"{k + 1:03d}" for k in order]
        return [f"G{k}x" for k in order]

    return st.builds(build, st.sampled_from(["numbers", "sparse", "digits_as_text",
                                             "padded", "text"]),
                     st.permutations(list(range(n_levels))), st.integers(2, 97))


def new_names(columns: list[str]) -> st.SearchStrategy[dict[str, str]]:
    name = st.from_regex(r"\A[a-z][a-z0-9_]{0,7}\Z", fullmatch=True).filter(
        lambda s: is_plain_name(s) and s not in BAMBI_RESERVED)
    return st.lists(name, min_size=len(columns), max_size=len(columns), unique=True).map(
        lambda names: dict(zip(columns, names, strict=True)))


def prefix_free(names: dict[str, str]) -> bool:
    values = list(names.values())
    return not any(a != b and b.startswith(a) for a in values for b in values)


def transformation(case: Case) -> st.SearchStrategy[Transformed]:
    """One of the four presentations, with its parameters drawn."""
    group, factor = ROLES[case.name]
    frame = case.frame
    columns = list(make_model(case.name, case.formula).spec.source_columns())
    options = [
        st.permutations(list(range(len(frame)))).map(lambda o: permute_rows(case, o)),
        new_names(columns).filter(prefix_free).map(lambda m: rename_columns(case, m)),
    ]
    if group is not None:
        options.append(relabellings(int(frame[group].nunique())).map(
            lambda labels: relabel(case, group, labels)))
    if factor is not None:
        n_rest = int(frame[factor].nunique()) - 1
        options.append(st.permutations(list(range(n_rest))).map(
            lambda o: reorder_levels(case, factor, o)))
    return st.one_of(options)


def composed(case: Case) -> st.SearchStrategy[Transformed]:
    """All four at once (for engines too slow to check them one by one)."""
    group, factor = ROLES[case.name]
    assert group is not None
    columns = list(make_model(case.name, case.formula).spec.source_columns())

    @st.composite
    def build(draw: Callable[..., Any]) -> Transformed:
        order = draw(st.permutations(list(range(len(case.frame)))))
        labels = draw(relabellings(int(case.frame[group].nunique())))
        t = permute_rows(case, order)
        t = relabelled = relabel(t.case, group, labels)
        if factor is not None:
            n_rest = int(case.frame[factor].nunique()) - 1
            t = reorder_levels(t.case, factor, draw(st.permutations(list(range(n_rest)))))
        levels = relabelled.levels
        mapping = draw(new_names(columns).filter(prefix_free))
        renamed = rename_columns(t.case, mapping)
        return Transformed(renamed.case, "permuted, relabelled, reordered and renamed",
                           renamed.renamed, levels)

    return build()


def frequentist_engines() -> list[str]:
    return [e for e in ENGINE_NAMES if engine_kind(e) == "frequentist"]


class Unsupported(Exception):
    """The engine refused the case: its fit is `unsupported`, with this reason."""


def engine_cases(engines: list[str], cases: dict[str, Case]) -> list[Any]:
    """(engine, case) pairs; a case the engine's registry row refuses (a family, crossed
    factors) is a strict expected failure with the row's reason, so an engine joins the
    suite by being registered, and the suite says when a limit goes away."""
    out = []
    for engine in engines:
        for name, case in cases.items():
            refusal = load_engine(engine).refuses(case.model(), Settings())
            marks = [pytest.mark.xfail(reason=refusal.reason, raises=Unsupported,
                                       strict=True)] if refusal else []
            out.append(pytest.param(engine, name, marks=marks, id=f"{engine}-{name}"))
    return out


def expect_fitted(workers: Workers, engine: str, case: Case) -> None:
    """Raise Unsupported where the engine refuses `case` (an expected failure)."""
    if load_engine(engine).refuses(case.model(), Settings()) is not None:
        fit = workers.fit(engine, case)
        if fit.status == "unsupported":
            raise Unsupported(f"{engine}: {fit.reason}")


def bayesian_engines() -> list[str]:
    return [e for e in ENGINE_NAMES if engine_kind(e) == "bayesian"]


def check_regular(fit_fn: Callable[[Case], Fit], base: Fit, t: Transformed,
                  rtol: float = 1e-6) -> None:
    other = fit_fn(t.case)
    gap = criterion_difference(base, other)
    assert gap is not None and gap <= 1e-9, f"{t.description}: log-likelihood moved {gap}"
    problems = differences(base, other, t.renamed, rtol=rtol, levels=t.levels)
    assert not problems, f"{t.description}: " + "; ".join(problems)


FREQ_SETTINGS = settings(max_examples=6, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.function_scoped_fixture,
                                                HealthCheck.filter_too_much])


@pytest.mark.parametrize(("engine", "case_name"), engine_cases(frequentist_engines(), CASES))
def test_frequentist_fit_is_invariant(engine: str, case_name: str, workers: Workers) -> None:
    reason = missing(engine)
    if reason:
        pytest.skip(f"{engine}: {reason}")
    case = CASES[case_name]
    expect_fitted(workers, engine, case)
    base = workers.baseline(engine, case)
    assert not base.diagnostics.singular, "a regular case must not be singular"
    rtol = load_engine(engine).invariance_rtol

    @FREQ_SETTINGS
    @given(t=transformation(case))
    def check(t: Transformed) -> None:
        check_regular(lambda c: workers.fit(engine, c), base, t, rtol)

    check()


@pytest.mark.parametrize(("engine", "case_name"),
                         engine_cases(frequentist_engines(), SINGULAR))
def test_frequentist_singular_fit_keeps_its_optimum(engine: str, case_name: str,
                                                    workers: Workers) -> None:
    reason = missing(engine)
    if reason:
        pytest.skip(f"{engine}: {reason}")
    case = SINGULAR[case_name]
    expect_fitted(workers, engine, case)
    base = workers.baseline(engine, case)

    @FREQ_SETTINGS
    @given(t=transformation(case))
    def check(t: Transformed) -> None:
        other = workers.fit(engine, t.case)
        gap = criterion_difference(base, other)
        assert gap is not None and gap <= 1e-6, f"{t.description}: log-likelihood moved {gap}"
        assert other.diagnostics.singular == base.diagnostics.singular
        edge = on_edge(base)
        near = on_edge(other, t.renamed, slack=10.0)
        left = edge - near
        moved = {str(k): (estimates(base)[k][0], estimates(other, t.renamed)[k][0]) for k in left}
        assert not left, f"{t.description}: {moved} left the boundary"
        problems = []
        for quantity, rtol, atol in (("std_error", 1e-3, 1e-9), ("sd", 1e-3, 1e-6),
                                     ("corr", 0.0, 1e-3)):
            # Group effects on a singular fit shrink to the boundary: not held here.
            skip = [q for q in QUANTITY_SPECS if q != quantity]
            # statsmodels' optimiser warns, or not, on its way to a singular optimum
            # depending on the order it meets the rows: the optimum is what is held here.
            problems += differences(base, other, t.renamed, rtol=rtol, atol=atol, skip=skip,
                                    levels=t.levels, exclude=edge, trust_may_differ=True)
        # The criterion is flat along the boundary (held to 1e-6 above), and lme4's
        # BOBYQA stops where its path ends: a relabelling of the politeness subjects
        # moved genderM by 2.2e-3 SE at the same optimum. 1e-2 SE is well below any
        # difference a reader could act on.
        # An interval's ends move with their estimate; Satterthwaite's df, a numerical
        # derivative at that flat optimum, moved by 2e-4 relative.
        a, b = estimates(base), estimates(other, t.renamed)
        for key, (value, se) in a.items():
            if key[0] in ("estimate", "lower", "upper") and abs(b[key][0] - value) > 1e-2 * se:
                problems.append(f"{key[0]} {key[2]}: {value:.10g} -> {b[key][0]:.10g} "
                                "(> 1e-2 SE)")
            if key[0] == "df" and abs(b[key][0] - value) > 1e-3 * value:
                problems.append(f"df {key[2]}: {value:.10g} -> {b[key][0]:.10g} (> 1e-3)")
        assert not problems, f"{t.description}: " + "; ".join(dict.fromkeys(problems))

    check()


def on_edge(fit: Fit, renamed: dict[str, str] | None = None, slack: float = 1.0) -> set[Key]:
    """The components of `fit` on the boundary (within `slack` times its thresholds),
    under the original names."""
    keys = estimates(fit, renamed)
    comps = fit.variance_components
    edge = set()
    for key, (value, _) in keys.items():
        quantity, group, term, _term2 = key
        if group is None or group == "Residual":
            continue
        if quantity == "corr" and 1 - abs(value) <= (1 - BOUNDARY_CORR) * slack:
            edge.add(key)
        if quantity == "sd" and value / residual_scale(comps) < BOUNDARY_SD * slack:
            edge.add(key)
    return edge


def bayesian_cases() -> list[tuple[str, str]]:
    """(engine, case) for every Bayesian engine and case. brms compiles a Stan program per
    model structure (about 40 s each): it is held to the crossed case, whose program the
    contract suite has compiled, rather than compiling intercept_factor's for this test
    alone; the crossed case's transformations are the same."""
    return [(e, c) for e in bayesian_engines() for c in BAMBI_CASES
            if e != "brms" or c == "crossed"]


@pytest.mark.bambi
@pytest.mark.parametrize(("engine", "case_name"), bayesian_cases())
def test_bayesian_fit_is_invariant_within_monte_carlo_error(engine: str, case_name: str,
                                                            workers: Workers) -> None:
    reason = missing(engine)
    if reason:
        pytest.skip(f"{engine}: {reason}")
    case = CASES[case_name]
    base = workers.baseline(engine, case)

    # One example: every transformation at once (rows permuted, levels relabelled and
    # reordered, columns renamed), each a full refit of a sampler.
    @settings(max_examples=1, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(t=composed(case))
    def check(t: Transformed) -> None:
        other = workers.fit(engine, t.case)
        # At the suite's small sampler settings R-hat and ESS sit near their thresholds:
        # the status may flip on Monte-Carlo noise; the numbers are what is held here.
        problems = differences(base, other, t.renamed, mc_sds=5.0, levels=t.levels,
                               trust_may_differ=True)
        assert not problems, f"{t.description}: " + "; ".join(problems)

    check()


# --- The suite catches a seeded data-handling bug -----------------------------------------

class _OneGroupReversed(StatsmodelsEngine):
    """statsmodels with one group's rows reversed in its random-effects design: the bug
    class of parity's former per-group matrix order, seeded on purpose."""

    name = "statsmodels"

    @staticmethod
    def _components_model(y, exog, frame, blocks, designs):  # type: ignore[no-untyped-def]
        from parity.rows.design import Design, group_codes

        codes, _ = group_codes(frame, blocks[0].group)
        rows = [i for i, c in enumerate(codes) if c == 0]
        broken = []
        for d in designs:
            m = d.matrix.copy()
            m[rows] = m[rows[::-1]]
            broken.append(Design(m, d.names))
        return StatsmodelsEngine._components_model(y, exog, frame, blocks, broken)


def _fit_in_process(engine: StatsmodelsEngine, case: Case) -> Fit:
    model = case.model()
    return engine.fit(model, prepare(case.frame, model.spec, case.categorical, model.family,
                                     model.trials), SAMPLER)


def _invariance_search(engine: StatsmodelsEngine, case: Case) -> Callable[[], None]:
    base = _fit_in_process(engine, case)

    # No shrinking: the buggy engine is expected to fail, and a failure is all we need.
    @settings(max_examples=8, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(t=transformation(case))
    def check(t: Transformed) -> None:
        check_regular(lambda c: _fit_in_process(engine, c), base, t)

    return check


def test_suite_catches_a_seeded_bug() -> None:
    """The same checks, on an engine with a seeded bug, must fail; on the real one pass."""
    case = CASES["independent"]
    found: list[str] = []
    for engine in (StatsmodelsEngine(), _OneGroupReversed()):
        try:
            _invariance_search(engine, case)()
        except Exception as exc:  # an AssertionError, or several in an ExceptionGroup
            found.append(f"{type(engine).__name__}: {exc}")
    assert len(found) == 1 and found[0].startswith("_OneGroupReversed"), found


# --- Every transformation keeps the model's family and trials ------------------------------

def _counts() -> pd.DataFrame:
    """Small count data (no fit is made): a count `k` of `n` trials by `x`, grouped by
    `g`, with a factor `f`."""
    frame = SLEEP.loc[:, ["x", "g", "f"]].copy()
    frame["n"] = 10
    frame["k"] = (frame.index % 7).astype(int)
    return frame


def _every_transformation(case: Case) -> list[Transformed]:
    n_groups = int(case.frame["g"].nunique())
    return [
        permute_rows(case, list(range(len(case.frame)))[::-1]),
        relabel(case, "g", [f"G{k}" for k in range(n_groups)][::-1]),
        rename_columns(case, {"k": "hits", "x": "dose", "g": "herd", "n": "size"}),
        reorder_levels(case, "f", [1, 0]),
    ]


@pytest.mark.parametrize(("family", "trials"), [("poisson", None), ("binomial", "n")])
def test_transformations_keep_family_and_trials(family: str, trials: str | None) -> None:
    """A Poisson (or binomial) case must stay one after every transformation, or the
    suite would check a Gaussian fit in its place."""
    case = Case("counts", _counts(), "k ~ x + f + (1 | g)", ("f",), family, trials)
    assert case.model().family == family
    for t in _every_transformation(case):
        model = t.case.model()
        assert (model.family, t.case.family) == (family, family), t.description
        expected = None if trials is None else t.renamed.get(trials, trials)
        assert model.trials == t.case.trials == expected, t.description
        if model.trials is not None:
            assert model.trials in t.case.frame.columns, t.description
            assert model.trials not in model.spec.variables(), t.description
    renamed = _every_transformation(case)[2]
    assert renamed.case.model().spec.response == "hits"
    if trials is not None:
        assert renamed.case.trials == "size"


# --- Regression: statsmodels' group order (the labels of the original report) ------------

LABELS = {
    "text": [f"s{k:02d}" for k in range(1, 19)],
    "numbers": list(range(1, 19)),
    "unsorted_numbers": [7, 3, 18, 1, 12, 5, 16, 9, 2, 14, 11, 4, 17, 8, 13, 6, 15, 10],
    "text_order_differs": [str(k) for k in (2, 10, 1, 11, 3, 12, 4, 13, 5, 14, 6, 15, 7,
                                            16, 8, 17, 9, 18)],
}
FORMULAS = {"||": "y ~ x + (x || g)", "|": "y ~ x + (x | g)",
            "crossed": "y ~ x + (1 | g) + (x || h)"}


def labelled(scheme: str, shuffle: bool) -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """The data under the scheme's labels, and the new labels' old ones."""
    t = relabel(Case("r", SLEEP, ""), "g", LABELS[scheme])
    frame = t.case.frame
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    return frame, t.levels


@pytest.mark.parametrize("structure", list(FORMULAS))
@pytest.mark.parametrize("scheme", list(LABELS))
def test_statsmodels_group_labels_do_not_move_the_fit(scheme: str, structure: str) -> None:
    engine = StatsmodelsEngine()
    base = _fit_in_process(engine, Case("r", SLEEP, FORMULAS[structure]))
    for shuffle in (False, True):
        frame, levels = labelled(scheme, shuffle)
        other = _fit_in_process(engine, Case("r", frame, FORMULAS[structure]))
        assert not differences(base, other, rtol=1e-6, levels=levels), (scheme, shuffle)


@pytest.mark.r
@pytest.mark.parametrize("structure", list(FORMULAS))
@pytest.mark.parametrize("scheme", list(LABELS))
def test_statsmodels_agrees_with_lme4_under_any_labels(scheme: str, structure: str,
                                                       workers: Workers) -> None:
    """The cases of the report: statsmodels against lme4 on the same, relabelled data,
    within the frequentist tolerances (structure matched: lme4 `||` for crossed)."""
    reason = r_missing()
    if reason:
        pytest.skip(f"R: {reason}")
    frame, _ = labelled(scheme, shuffle=scheme == "unsorted_numbers")
    case = Case(f"r_{scheme}", frame, FORMULAS[structure])
    sm, lme4 = workers.fit("statsmodels", case), workers.fit("lme4", case)
    assert sm.status == "ok" and lme4.status == "ok", (sm.reason, lme4.reason)
    for fe in lme4.fixed_effects:
        other = sm.fixed(fe.term)
        assert other is not None
        assert math.isclose(other.estimate, fe.estimate, rel_tol=1e-5, abs_tol=1e-4 * fe.std_error)
        assert math.isclose(other.std_error, fe.std_error, rel_tol=1e-3)
    for vc in lme4.variance_components:
        other_vc = sm.component(vc.group, vc.term, vc.term2)
        assert other_vc is not None, vc.label
        assert math.isclose(other_vc.estimate, vc.estimate, rel_tol=1e-3, abs_tol=1e-6), vc.label
    # Each level's conditional mode: a group paired with another group's rows moves them.
    assert len(sm.group_effects) == len(lme4.group_effects) > 0
    for g in lme4.group_effects:
        mine = sm.group_effect(g.group, g.level, g.term)
        assert mine is not None and g.std_error is not None, g.label
        assert abs(mine.estimate - g.estimate) <= 2e-3 * abs(g.estimate) + 1e-2 * g.std_error, (
            g.label, mine.estimate, g.estimate)
