"""`parity diff` on hand-made results: what moved, what flipped, and the exit codes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from parity.cli import main
from parity.compare.diff import diff_results, load_results
from parity.compare.tolerances import Policy, load_policy
from parity.errors import DataError
from parity.schema import (
    SCHEMA_VERSION,
    Comparison,
    Diagnostics,
    Fit,
    FixedEffect,
    Provenance,
    VarianceComponent,
    fit_to_dict,
    results_document,
)


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return load_policy(project=Path(tmp_path_factory.mktemp("p")) / "none.toml")


def make_fit(engine: str, genderm: float = -108.2, status: str = "ok",
             lme4_version: str = "1.1.31", variant: str | None = None) -> Fit:
    return Fit(
        model="m1", formula="frequency ~ gender + (1 | subject)", engine=engine,
        status=status, reason=None if status == "ok" else "R is not installed",  # type: ignore[arg-type]
        n_obs=83, n_dropped=1,
        fixed_effects=(FixedEffect("(Intercept)", 256.7, 15.2, 228.0, 285.0),
                       FixedEffect("genderM", genderm, 21.1, -148.0, -68.0)),
        variance_components=(VarianceComponent("subject", "(Intercept)", None, "sd", 24.6),
                             VarianceComponent("Residual", None, None, "sd", 29.2)),
        diagnostics=Diagnostics(converged=True, singular=False),
        provenance=Provenance(lme4_version if engine == "lme4" else "0.14.4", None, {}, 0.1,
                              {engine: lme4_version if engine == "lme4" else "0.14.4"}),
        structure={"subject": "independent"}, variant=variant,
    )


def row(verdict: str = "agree", term: str = "genderM") -> Comparison:
    return Comparison("m1", "statsmodels", "lme4", "estimate", term, -108.2, -108.2, 0.003,
                      verdict, None if verdict == "agree" else "differs by 1e-2 relative")  # type: ignore[arg-type]


def document(fits: list[Fit], rows: list[Comparison], **extra: Any) -> dict[str, Any]:
    doc = results_document(fits, rows, **extra)
    doc["reference_fits"] = [fit_to_dict(make_fit("lme4", variant="independent"))]
    return json.loads(json.dumps(doc))


def baseline() -> dict[str, Any]:
    return document([make_fit("lme4"), make_fit("statsmodels")],
                    [row(), row(term="(Intercept)")], environment={"blas": "openblas"})


def write(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def test_unchanged_files_move_nothing(tmp_path: Path, policy: Policy,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    report = diff_results(baseline(), baseline(), policy)
    assert not report.moved and not report.flips and not report.version_changes
    assert not report.flipped
    # two fits and the lme4:independent refit, 2 fixed effects x 5 (estimate, SE, the
    # interval's ends, the conclusion) + 2 SDs each
    assert len(report.rows) == 36
    assert {r.engine for r in report.rows} == {"lme4", "statsmodels", "lme4:independent"}
    a, b = write(tmp_path / "a.json", baseline()), write(tmp_path / "b.json", baseline())
    assert main(["diff", a, b]) == 0
    out = capsys.readouterr().out
    assert "36 values compared: 0 moved beyond tolerance" in out
    assert "0 verdicts flipped" in out
    assert "values moved" not in out


def test_moved_estimate_beyond_tolerance_is_shown(policy: Policy) -> None:
    moved = document([make_fit("lme4"), make_fit("statsmodels", genderm=-108.0)],
                     [row(), row(term="(Intercept)")])
    report = diff_results(baseline(), moved, policy)
    assert [(r.engine, r.quantity, r.term) for r in report.moved] == [
        ("statsmodels", "estimate", "genderM")]
    r = report.moved[0]
    # frequentist-frequentist rule: rtol 1e-5 of |A| plus 1e-4 of A's SE
    assert r.tolerance == pytest.approx(1e-5 * 108.2 + 1e-4 * 21.1)
    assert r.difference == pytest.approx(0.2)
    assert not report.flipped  # numbers moved, no verdict changed
    text = report.render()
    assert "values moved beyond tolerance (1)" in text
    line = next(ln for ln in text.splitlines() if "genderM" in ln)
    assert "statsmodels" in line and "-108.2" in line and "-108" in line and "MOVED" in line
    assert text.splitlines()[0].startswith("parity diff: A = A, B = B")


def test_movement_within_tolerance_is_counted_not_shown(policy: Policy) -> None:
    nudged = document([make_fit("lme4", genderm=-108.2 + 1e-6), make_fit("statsmodels")],
                      [row(), row(term="(Intercept)")])
    report = diff_results(baseline(), nudged, policy)
    assert not report.moved
    assert "1 changed within it" in report.summary()
    assert "genderM" not in report.render()
    assert "genderM" in report.render(all_rows=True)


def test_flipped_verdict_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flipped = document([make_fit("lme4"), make_fit("statsmodels")],
                       [row("disagree"), row(term="(Intercept)")])
    a = write(tmp_path / "a.json", baseline())
    b = write(tmp_path / "b.json", flipped)
    assert main(["diff", a, b]) == 1
    out = capsys.readouterr().out
    assert "verdicts flipped (1)" in out
    line = next(ln for ln in out.splitlines() if "disagree" in ln)
    assert "genderM" in line and "agree" in line and "differs by 1e-2 relative" in line


def test_fit_status_change_exits_1_and_rows_in_one_file_are_shown(tmp_path: Path,
                                                                   policy: Policy) -> None:
    skipped = document([make_fit("lme4", status="skipped"), make_fit("statsmodels")], [])
    report = diff_results(baseline(), skipped, policy)
    assert report.flipped
    [change] = report.fit_changes
    assert (change.engine, change.a, change.b) == ("lme4", "ok", "skipped")
    assert change.reason == "R is not installed"
    text = report.render()
    assert "fit status changed (1)" in text and "R is not installed" in text
    # the comparison rows went with the lme4 fit: counted, explained by the status line
    assert "2 in one file only" in report.summary()
    assert "verdicts flipped (" not in text

    extra = baseline()
    extra["comparisons"].append(json.loads(json.dumps(extra["comparisons"][0])))
    extra["comparisons"][-1]["quantity"] = "std_error"
    report = diff_results(baseline(), extra, policy)
    assert not report.flipped
    assert "(absent)" in report.render()  # a new row where both fits ran is shown


def test_version_and_environment_changes(policy: Policy) -> None:
    upgraded = document([make_fit("lme4", lme4_version="1.1.35"), make_fit("statsmodels")],
                        [row(), row(term="(Intercept)")], environment={"blas": "mkl"})
    report = diff_results(baseline(), upgraded, policy)
    changes = {(c.where, c.name): (c.a, c.b) for c in report.version_changes}
    assert changes[("environment", "blas")] == ("openblas", "mkl")
    # the refit keeps 1.1.31, so lme4 is recorded with both versions in B
    assert changes[("lme4", "engine_version")] == ("1.1.31", "1.1.31, 1.1.35")
    assert "versions changed" in report.render()
    assert not report.flipped


def test_bayesian_values_use_the_posterior_sd(policy: Policy) -> None:
    a = document([replace(make_fit("lme4"), engine="bambi")], [])
    b = document([replace(make_fit("lme4", genderm=-105.0), engine="bambi")], [])
    [moved] = [r for r in diff_results(a, b, policy).rows if r.term == "genderM"
               and r.engine == "bambi" and r.quantity == "estimate"]
    assert moved.tolerance == pytest.approx(0.2 * 21.1)  # bayesian-bayesian: 0.2 SD
    assert not moved.moved  # 3.2 is within 0.2 x 21.1


@pytest.mark.parametrize("content", [None, "not json", "[1, 2]", '{"fits": []}',
                                     '{"schema_version": 99, "fits": []}'])
def test_bad_file_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        content: str | None) -> None:
    a = write(tmp_path / "a.json", baseline())
    b = tmp_path / "b.json"
    if content is not None:
        b.write_text(content)
    assert main(["diff", a, str(b)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("parity: error:") and "b.json" in err[0]


def test_directory_means_its_results_json(tmp_path: Path) -> None:
    write(tmp_path / "results.json", baseline())
    assert load_results(tmp_path)["schema_version"] == SCHEMA_VERSION
    with pytest.raises(DataError, match="not found"):
        load_results(tmp_path / "nothing")


def test_group_effects_and_logliks_are_diffed_and_schema_1_is_read(tmp_path: Path,
                                                                    policy: Policy) -> None:
    from dataclasses import replace

    from parity.compare.diff import diff_files
    from parity.schema import GroupEffect

    def with_effect(fit: Fit, value: float) -> Fit:
        return replace(fit, criterion="REML", fit_statistics={"loglik": -390.0},
                       group_effects=(GroupEffect("subject", "F1", "(Intercept)", value, 10.0),))

    a = document([with_effect(make_fit("lme4"), 5.0)], [])
    b = document([with_effect(make_fit("lme4"), 9.0)], [])
    report = diff_results(a, b, policy)
    (moved,) = report.moved
    assert (moved.quantity, moved.term) == ("group_effect", "ranef(subject F1: (Intercept))")
    assert any(r.quantity == "loglik" and r.term == "logLik (REML)" for r in report.rows)
    old = baseline()
    old["schema_version"] = 1
    for fit in old["fits"]:
        for key in ("criterion", "group_effects", "fixed_effects_cov"):
            fit.pop(key)
    new = diff_files(Path(write(tmp_path / "a.json", old)),
                     Path(write(tmp_path / "b.json", baseline())), policy)
    assert not new.flipped


def test_a_fit_of_another_criterion_or_family_is_named(policy: Policy) -> None:
    from dataclasses import replace

    a = document([replace(make_fit("lme4"), criterion="REML")], [])
    b = document([replace(make_fit("lme4"), criterion="ML")], [])
    report = diff_results(a, b, policy)
    (change,) = report.fit_changes
    assert "REML" in change.a and "ML" in change.b and not change.flipped


# Fields schema version 2 added (schema.py): a version-1 file has none of them.
_V2_FIT_FIELDS = ("criterion", "group_effects", "fixed_effects_cov", "family", "link", "kind")
_V2_STATISTICS = ("loglik", "aic", "bic", "deviance")
_V2_QUANTITIES = ("group_effect", "loglik")


def _schema_1(doc: dict[str, Any]) -> dict[str, Any]:
    """A version-1 document of the same run: the fields version 2 added dropped, and the
    comparison rows of quantities version 1 did not have."""
    old = json.loads(json.dumps(doc))
    old["schema_version"] = 1
    for fit in [*old["fits"], *old["reference_fits"]]:
        for key in _V2_FIT_FIELDS:
            fit.pop(key, None)
        for key in _V2_STATISTICS:
            fit["fit_statistics"].pop(key, None)
    old["comparisons"] = [c for c in old["comparisons"]
                          if c["quantity"] not in _V2_QUANTITIES]
    for c in old["comparisons"]:
        c.pop("level", None)
    return old


def _current() -> dict[str, Any]:
    """A run as this parity writes it: frequentist fits by REML with their criterion,
    log-likelihood and group effects, a Bayesian fit, and rows of every quantity."""
    from parity.schema import GroupEffect

    def full(fit: Fit, criterion: str | None) -> Fit:
        stats = {"loglik": -390.0, "aic": 790.0, "bic": 800.0} if criterion else {}
        return replace(fit, criterion=criterion, fit_statistics=stats,
                       group_effects=(GroupEffect("subject", "F1", "(Intercept)", 5.0, 10.0),),
                       fixed_effects_cov=((231.0, -1.0), (-1.0, 445.0)))

    rows = [row(), row(term="(Intercept)"),
            Comparison("m1", "statsmodels", "lme4", "group_effect",
                       "ranef(subject F1: (Intercept))", 5.0, 5.0, 0.1, "agree", None,
                       "subject", "F1"),
            Comparison("m1", "statsmodels", "lme4", "loglik", "logLik (REML)", -390.0,
                       -390.0, 1e-6, "agree", None)]
    doc = results_document([full(make_fit("lme4"), "REML"),
                            full(make_fit("statsmodels"), "REML"),
                            full(replace(make_fit("lme4"), engine="bambi"), None)], rows)
    doc["reference_fits"] = [fit_to_dict(full(make_fit("lme4", variant="independent"),
                                              "REML"))]
    return json.loads(json.dumps(doc))


@pytest.mark.parametrize("old_first", [True, False])
def test_schema_1_diffs_honestly_against_the_current_schema(
        tmp_path: Path, policy: Policy, capsys: pytest.CaptureFixture[str],
        old_first: bool) -> None:
    """The same run written as schema 1 and as today's schema: no fit changed status or
    criterion, no frequentist fit is called a posterior, nothing flipped (exit 0), and
    what version 1 did not record is said once rather than listed as rows."""
    new = _current()
    old = _schema_1(new)
    a, b = (old, new) if old_first else (new, old)
    report = diff_results(a, b, policy)
    assert report.fit_changes == ()
    assert not report.flipped and not report.moved and not report.flips
    text = report.render()
    assert "posterior" not in text
    assert "fit status changed" not in text
    assert "ranef(" not in text and "logLik" not in text
    assert "schema version 1" in text
    assert "0 fit status changes" in report.summary()
    paths = [write(tmp_path / "a.json", a), write(tmp_path / "b.json", b)]
    assert main(["diff", *paths]) == 0
    assert "posterior" not in capsys.readouterr().out


def test_a_frequentist_fit_without_a_recorded_criterion_is_not_a_posterior(
        policy: Policy) -> None:
    """A version-1 fit has no criterion: unknown, and so no change of criterion; a real
    change (REML to ML) between two files that record it is still named."""
    new = _current()
    old = _schema_1(new)
    ml = json.loads(json.dumps(new))
    for fit in ml["fits"][:2]:
        fit["criterion"] = "ML"
    report = diff_results(old, ml, policy)
    assert report.fit_changes == ()
    changes = diff_results(new, ml, policy).fit_changes
    assert {(c.engine, c.a, c.b) for c in changes} == {
        ("lme4", "ok (gaussian/identity, REML)", "ok (gaussian/identity, ML)"),
        ("statsmodels", "ok (gaussian/identity, REML)", "ok (gaussian/identity, ML)")}


# Fields schema version 4 added (schema.py): a version-3 file has none of them.
_V4_FIXED_FIELDS = ("statistic", "statistic_kind", "df", "df_method", "p_value",
                    "interval_method", "p_direction")
_V4_QUANTITIES = ("lower", "upper", "df", "conclusion")


def _published(fit: Fit) -> Fit:
    """`fit` with what version 4 added: each coefficient's t-test, df and interval method."""
    fixed = tuple(replace(fe, statistic=fe.estimate / fe.std_error, statistic_kind="t",
                          df=4.2, df_method="Satterthwaite", p_value=0.01,
                          interval_method="Wald-t") for fe in fit.fixed_effects)
    return replace(fit, fixed_effects=fixed, interval=0.95)


def _schema_3(doc: dict[str, Any]) -> dict[str, Any]:
    """A version-3 document of the same run: the fields version 4 added dropped, and the
    comparison rows of quantities version 3 did not have."""
    old = json.loads(json.dumps(doc))
    old["schema_version"] = 3
    for fit in [*old["fits"], *old["reference_fits"]]:
        fit.pop("interval", None)
        for fe in fit["fixed_effects"]:
            for key in _V4_FIXED_FIELDS:
                fe.pop(key, None)
        for vc in fit["variance_components"]:
            vc.pop("interval_method", None)
    old["comparisons"] = [c for c in old["comparisons"]
                          if c["quantity"] not in _V4_QUANTITIES]
    for c in old["comparisons"]:
        c.pop("terms", None)
    return old


def test_schema_3_reads_and_what_it_lacks_is_said_once_not_listed(
        tmp_path: Path, policy: Policy, capsys: pytest.CaptureFixture[str]) -> None:
    """A version-3 file against a version-4 one of the same run: it reads; the df it
    never recorded, and the comparison rows of the new quantities, are left out with one
    note naming the older file, never a moved value, a flipped verdict or a value that
    appeared (exit 0)."""
    rows = [replace(row(), terms=("genderM",)),
            Comparison("m1", "statsmodels", "lme4", "conclusion", "genderM", -1.0, -1.0,
                       0.0, "agree", "same conclusion", terms=("genderM",)),
            Comparison("m1", "statsmodels", "lme4", "lower", "genderM", -148.0, -149.0,
                       None, "not_comparable", "Wald-z against Wald-t", terms=("genderM",))]
    new = document([_published(make_fit("lme4")), _published(make_fit("statsmodels"))], rows)
    old = _schema_3(new)
    assert "df" not in old["fits"][0]["fixed_effects"][0]
    report = diff_results(old, new, policy, "old.json", "new.json")
    assert not report.moved and not report.flips and not report.flipped
    assert report.fit_changes == ()
    # the interval's ends and the conclusion come from lower/upper, which version 3 has
    both = {(r.engine, r.quantity, r.term) for r in report.rows
            if r.a is not None and r.b is not None}
    assert ("lme4", "lower", "genderM") in both and ("lme4", "conclusion", "genderM") in both
    assert all(r.a is not None and r.b is not None for r in report.rows)
    assert all(v.a is not None and v.b is not None for v in report.verdicts)
    (note,) = report.notes
    assert note.startswith("old.json is schema version 3, which records no t-test df")
    assert "4 values and 2 comparison rows" in note
    # and read the other way round, the same note
    back = diff_results(new, old, policy, "new.json", "old.json")
    assert not back.flipped and not back.moved and back.notes == report.notes
    paths = [write(tmp_path / "a.json", old), write(tmp_path / "b.json", new)]
    assert main(["diff", *paths]) == 0
    out = capsys.readouterr().out
    assert "schema version 3, which records no t-test df" in out
