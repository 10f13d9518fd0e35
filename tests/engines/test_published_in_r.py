"""What an analyst publishes of an R engine's fixed effects (the test statistic, its df,
the p-value, the interval) comes from the engine's own library, and equals what that
library gives in a plain R session.

lme4's lmer through lmerTest (Satterthwaite, and Kenward-Roger through pbkrtest), on
lme4's sleepstudy and on the politeness model; glmer's z-tests on lme4's cbpp; glmmTMB's
and nlme's own summaries on sleepstudy; lme4's profile-likelihood intervals of the fixed
effects and the SDs against `confint(method = "profile")`. Every p-value is the
two-sided tail of its own statistic. Fits run in the workers (R never in this process);
plain R runs once, through Rscript, for the whole module.

Measured (R 4.2, lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2, glmmTMB 1.1.5, nlme
3.1-162): parity's tests, Wald and profile intervals are plain R's exactly (relative
difference 0) for lmer, glmer and glmmTMB, and nlme's within 9e-14; each p-value is its
statistic's tail within 2e-13 (1.2e-12 for glmmTMB's p of 4.5e-297). The bounds below
leave room for another platform's arithmetic only.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from scipy import stats

from conftest import engine_missing
from parity.engines.invariance import Case
from parity.inputs.r_datasets import load_r_dataset
from parity.inputs.seed import POLITENESS_CATEGORICAL, politeness, politeness_path
from parity.schema import Fit, FixedEffect
from parity.settings import Settings
from support import Workers, worker_pool

pytestmark = pytest.mark.r

SLEEP = "Reaction ~ Days + (Days | Subject)"
POLITE = "frequency ~ gender + attitude + (1 | subject) + (1 | scenario)"
CBPP = "incidence ~ period + (1 | herd)"
# Relative bounds: tests (statistic, df, p) and Wald intervals, profile intervals.
TEST_RTOL = 1e-6
WALD_RTOL = 1e-5
PROFILE_RTOL = 1e-5
P_RTOL = 1e-8

# Plain R: each library's own summary, in one session. Politeness is read as parity
# reads it (its factors' levels sort alike: F1 ... M7, inf < pol, scenarios 1 ... 7).
PLAIN_R = r"""
suppressPackageStartupMessages({
  library(lme4); library(lmerTest, warn.conflicts = FALSE); library(glmmTMB); library(nlme)
})
args <- commandArgs(trailingOnly = TRUE)
polite <- read.csv(args[[1]])
for (v in c("subject", "gender", "scenario", "attitude")) polite[[v]] <- factor(polite[[v]])
table_rows <- function(co, cols) lapply(stats::setNames(rownames(co), rownames(co)),
  function(t) stats::setNames(as.list(unname(co[t, cols])), names(cols)))
lmer_side <- function(formula, data) {
  fit <- lmerTest::lmer(formula, data = data, REML = TRUE)
  cols <- c(t = "t value", df = "df", p = "Pr(>|t|)")
  out <- list()
  for (ddf in c("Satterthwaite", "Kenward-Roger")) {
    co <- summary(fit, ddf = ddf)$coefficients
    rows <- table_rows(co, cols)
    for (i in seq_len(nrow(co))) {
      L <- numeric(nrow(co)); L[i] <- 1
      ci <- lmerTest::contest1D(fit, L, ddf = ddf, confint = TRUE, level = 0.95)
      rows[[i]]$lower <- ci$lower
      rows[[i]]$upper <- ci$upper
    }
    out[[ddf]] <- rows
  }
  pr <- confint(as(fit, "lmerMod"), method = "profile", level = 0.95, oldNames = TRUE,
                quiet = TRUE)
  vc <- as.data.frame(VarCorr(fit), order = "lower.tri")
  out$profile <- list(
    fixed = lapply(stats::setNames(rownames(pr)[-seq_len(nrow(vc))],
                                   rownames(pr)[-seq_len(nrow(vc))]),
                   function(t) unname(pr[t, ])),
    theta = lapply(seq_len(nrow(vc)), function(i) list(
      group = vc$grp[i], term = if (is.na(vc$var1[i])) NULL else vc$var1[i],
      term2 = if (is.na(vc$var2[i])) NULL else vc$var2[i], bounds = unname(pr[i, ]))))
  out
}
g <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
           family = binomial)
gci <- confint(g, parm = "beta_", method = "Wald", level = 0.95)
glmer_rows <- table_rows(summary(g)$coefficients, c(z = "z value", p = "Pr(>|z|)"))
for (t in names(glmer_rows)) glmer_rows[[t]][c("lower", "upper")] <- as.list(unname(gci[t, ]))
tmb <- glmmTMB(Reaction ~ Days + (Days | Subject), data = sleepstudy, REML = TRUE)
tci <- confint(tmb, parm = "beta_", method = "wald", level = 0.95)
tmb_rows <- table_rows(summary(tmb)$coefficients$cond, c(z = "z value", p = "Pr(>|z|)"))
for (t in names(tmb_rows)) tmb_rows[[t]][c("lower", "upper")] <- as.list(unname(tci[t, 1:2]))
n <- lme(Reaction ~ Days, random = ~ Days | Subject, data = sleepstudy, method = "REML")
nci <- intervals(n, level = 0.95, which = "fixed")$fixed
nlme_rows <- table_rows(summary(n)$tTable, c(t = "t-value", df = "DF", p = "p-value"))
for (t in names(nlme_rows)) nlme_rows[[t]][c("lower", "upper")] <- as.list(unname(nci[t, c(1, 3)]))
cat(jsonlite::toJSON(list(
  sleep = lmer_side(Reaction ~ Days + (Days | Subject), sleepstudy),
  polite = lmer_side(frequency ~ gender + attitude + (1 | subject) + (1 | scenario), polite),
  glmer = glmer_rows, glmmtmb = tmb_rows, nlme = nlme_rows),
  auto_unbox = TRUE, digits = NA, null = "null"))
"""


def need(*engines: str) -> None:
    for engine in engines:
        reason = engine_missing(engine)
        if reason:
            pytest.skip(f"{engine}: {reason}")


@pytest.fixture(scope="module")
def plain() -> dict[str, Any]:
    """Every library's own numbers, from one plain R session."""
    need("lme4", "glmmtmb", "nlme")
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not on PATH")
    proc = subprocess.run(["Rscript", "-e", PLAIN_R, politeness_path()], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    yield from worker_pool()


@pytest.fixture(scope="module")
def cases(cbpp: pd.DataFrame) -> dict[str, Case]:
    need("lme4")
    sleep = load_r_dataset("lme4::sleepstudy")
    return {"sleep": Case("sleep", sleep.frame, SLEEP, tuple(sleep.factors)),
            "polite": Case("polite", politeness(), POLITE, POLITENESS_CATEGORICAL),
            "cbpp": Case("cbpp", cbpp, CBPP, ("herd", "period"), "binomial", "size")}


SETTINGS = {"Satterthwaite": Settings(), "Kenward-Roger": Settings(ddf="kenward-roger"),
            "none": Settings(ddf="none"), "profile": Settings(profile=True)}


@pytest.fixture(scope="module")
def fits(cases: dict[str, Case], workers: Workers) -> dict[tuple[str, str, str], Fit]:
    """(engine, case, setting) -> the fit, each fitted once for the module; lme4 is
    profiled once per data set."""
    need("lme4", "glmmtmb", "nlme")
    out = {("lme4", case, name): workers.fit("lme4", cases[case], settings)
           for case in ("sleep", "polite") for name, settings in SETTINGS.items()}
    out["lme4", "cbpp", "Satterthwaite"] = workers.fit("lme4", cases["cbpp"], Settings())
    for engine in ("glmmtmb", "nlme"):
        out[engine, "sleep", "Satterthwaite"] = workers.fit(engine, cases["sleep"],
                                                            Settings())
    for key, fit in out.items():
        assert fit.status == "ok", (key, fit.reason)
        assert not fit.is_recorded, key
    return out


def rel(a: float | None, b: float) -> float:
    assert a is not None
    return abs(a - b) / max(abs(b), 1e-300)


def _rows(fit: Fit) -> dict[str, FixedEffect]:
    return {f.term: f for f in fit.fixed_effects}


@pytest.mark.parametrize("case", ["sleep", "polite"])
@pytest.mark.parametrize("ddf", ["Satterthwaite", "Kenward-Roger"])
def test_lmer_tests_are_lmerTests(case: str, ddf: str, fits: dict[tuple[str, str, str], Fit],
                                  plain: dict[str, Any]) -> None:
    """df, t, p and the Wald-t interval of each coefficient are lmerTest's (pbkrtest's
    for Kenward-Roger); the SE stays lme4's own."""
    fit = fits["lme4", case, ddf]
    truth = plain[case][ddf]
    rows = _rows(fit)
    assert set(rows) == set(truth)
    assert fit.interval == 0.95
    assert fit.provenance.settings["ddf"] == ddf.lower()
    assert fit.provenance.settings["profile"] is False
    worst = {"test": 0.0, "wald": 0.0}
    for term, r in truth.items():
        f = rows[term]
        assert (f.statistic_kind, f.df_method, f.interval_method) == ("t", ddf, "Wald-t")
        worst["test"] = max(worst["test"], rel(f.statistic, r["t"]), rel(f.df, r["df"]),
                            rel(f.p_value, r["p"]))
        worst["wald"] = max(worst["wald"], rel(f.lower, r["lower"]), rel(f.upper, r["upper"]))
    assert worst["test"] < TEST_RTOL, worst
    assert worst["wald"] < WALD_RTOL, worst


@pytest.mark.parametrize("case", ["sleep", "polite"])
def test_lmer_without_df_gives_z_tests(case: str, fits: dict[tuple[str, str, str], Fit],
                                       plain: dict[str, Any]) -> None:
    """`--ddf none`: lme4's estimates and SEs, the t value lmerTest prints read as a z
    (no df), the normal's two-sided p-value and a Wald-z interval."""
    fit, satt = fits["lme4", case, "none"], _rows(fits["lme4", case, "Satterthwaite"])
    truth = plain[case]["Satterthwaite"]
    assert fit.provenance.settings["ddf"] == "none"
    q = stats.norm.ppf(0.975)
    for term, f in _rows(fit).items():
        assert (f.statistic_kind, f.df, f.df_method, f.interval_method) == (
            "z", None, None, "Wald-z")
        assert f.estimate == satt[term].estimate and f.std_error == satt[term].std_error
        assert rel(f.statistic, truth[term]["t"]) < TEST_RTOL
        assert rel(f.p_value, 2 * stats.norm.sf(abs(truth[term]["t"]))) < TEST_RTOL
        assert rel(f.lower, f.estimate - q * f.std_error) < WALD_RTOL
        assert rel(f.upper, f.estimate + q * f.std_error) < WALD_RTOL


@pytest.mark.parametrize("case", ["sleep", "polite"])
def test_profile_intervals_are_lme4s(case: str, fits: dict[tuple[str, str, str], Fit],
                                     plain: dict[str, Any]) -> None:
    """With profile=True the fixed effects' and the components' intervals are
    `confint(method = "profile")`'s; the tests stay lmerTest's Satterthwaite ones."""
    fit = fits["lme4", case, "profile"]
    truth = plain[case]["profile"]
    assert fit.provenance.settings["profile"] is True
    worst = 0.0
    for term, (lower, upper) in truth["fixed"].items():
        f = fit.fixed(term)
        assert f is not None and f.interval_method == "profile", term
        assert f.df_method == "Satterthwaite"
        worst = max(worst, rel(f.lower, lower), rel(f.upper, upper))
    for row in truth["theta"]:
        v = fit.component(row["group"], row.get("term"), row.get("term2"))
        assert v is not None and v.interval_method == "profile", row
        lower, upper = row["bounds"]
        worst = max(worst, rel(v.lower, lower), rel(v.upper, upper))
    assert worst < PROFILE_RTOL, worst


def test_glmer_z_tests_are_glmers(fits: dict[tuple[str, str, str], Fit],
                                  plain: dict[str, Any]) -> None:
    fit = fits["lme4", "cbpp", "Satterthwaite"]
    worst = 0.0
    for term, r in plain["glmer"].items():
        f = fit.fixed(term)
        assert f is not None, term
        assert (f.statistic_kind, f.df, f.df_method, f.interval_method) == \
            ("z", None, None, "Wald-z")
        worst = max(worst, rel(f.statistic, r["z"]), rel(f.p_value, r["p"]),
                    rel(f.lower, r["lower"]), rel(f.upper, r["upper"]))
    assert worst < TEST_RTOL, worst


@pytest.mark.parametrize(("engine", "kind", "df_method"),
                         [("glmmtmb", "z", None), ("nlme", "t", "containment")])
def test_glmmtmb_and_nlme_publish_their_own_summaries(
        engine: str, kind: str, df_method: str | None,
        fits: dict[tuple[str, str, str], Fit], plain: dict[str, Any]) -> None:
    fit = fits[engine, "sleep", "Satterthwaite"]
    assert fit.interval == 0.95
    worst = 0.0
    for term, r in plain[engine].items():
        f = fit.fixed(term)
        assert f is not None, term
        assert (f.statistic_kind, f.df_method) == (kind, df_method)
        assert f.interval_method == ("Wald-z" if kind == "z" else "Wald-t")
        worst = max(worst, rel(f.statistic, r[kind]), rel(f.p_value, r["p"]),
                    rel(f.lower, r["lower"]), rel(f.upper, r["upper"]))
        if kind == "t":
            worst = max(worst, rel(f.df, r["df"]))
        else:
            assert f.df is None
    assert worst < TEST_RTOL, worst


def two_sided(f: FixedEffect) -> float:
    assert f.statistic is not None
    if f.statistic_kind == "z":
        return float(2 * stats.norm.sf(abs(f.statistic)))
    assert f.df is not None
    return float(2 * stats.t.sf(abs(f.statistic), f.df))


@pytest.mark.parametrize("key", [("lme4", "sleep", "Satterthwaite"),
                                 ("lme4", "polite", "Kenward-Roger"),
                                 ("lme4", "cbpp", "Satterthwaite"),
                                 ("glmmtmb", "sleep", "Satterthwaite"),
                                 ("nlme", "sleep", "Satterthwaite")],
                         ids=lambda k: "-".join(k))
def test_each_p_value_is_its_statistics_two_sided_tail(
        key: tuple[str, str, str], fits: dict[tuple[str, str, str], Fit]) -> None:
    """p = 2 (1 - Phi(|z|)) for a z-test, 2 (1 - F_t(|t|, df)) for a t-test (scipy)."""
    worst = 0.0
    for f in fits[key].fixed_effects:
        assert f.p_value is not None and math.isfinite(f.p_value), f
        worst = max(worst, rel(f.p_value, two_sided(f)))
    assert worst < P_RTOL, worst
