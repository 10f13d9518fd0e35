"""A study's fits turned into its record: the verdicts of each replicate, the rows, the
summary, the calibrated tolerances and the table of fits.

Like with like, as in `parity run`: each replicate's fits are compared with the
reference's matched-structure refit of it (`lme4:independent`, where the plan fitted
one), and an engine that fitted independent random coefficients is judged against that
refit, not against lme4's correlated fit; a row says which (`judged_against`) and, where
it does not agree, why (`reason`). Calibration learns only from such like-with-like
rows of converged fits (:func:`parity.study.calibrate.left_out_because`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from parity import __version__
from parity.compare.rules import compare_all, fit_kind
from parity.compare.tolerances import Policy
from parity.pipeline.matched import INDEPENDENT, independent_variant
from parity.registry import engine_kind
from parity.schema import Fit
from parity.spec.models import Model
from parity.study.calibrate import (
    NO_TOLERANCE,
    Scaled,
    Tally,
    calibrate,
    calibrated_toml,
    left_out_because,
    scaled,
    structures_differ,
)
from parity.study.design import Design
from parity.study.options import StudyOptions, StudyResult
from parity.study.tables import (
    REFERENCE,
    StudyRow,
    fit_rows,
    row_dicts,
    summarize,
    verdicts_against,
)
from parity.study.truth import Truth


def assemble(model: Model, designs: Sequence[Design], truth: Truth, truth_fit: Fit,
              fits: dict[tuple[int, int, str], Fit], options: StudyOptions, policy: Policy,
              scheduler: dict[str, Any]) -> StudyResult:
    """`fits` by (groups, replicate, label): each engine's fits under its name, and the
    reference's matched-structure refits under theirs (`lme4:independent`)."""
    order = [options.reference] + [e for e in options.engines if e != options.reference]
    matched = f"{options.reference}:{INDEPENDENT}"
    rows: list[StudyRow] = []
    needs: list[Scaled] = []
    pairs: list[dict[str, Any]] = []
    tally = Tally()
    for d in designs:
        # Whether lme4's fit estimates correlations some engines fit as independent.
        unlike_possible = independent_variant(model, d.data) is not None
        for r in range(options.replicates):
            replicate = [fits[(d.groups, r, e)] for e in order if (d.groups, r, e) in fits]
            refits = [fits[(d.groups, r, matched)]] if (d.groups, r, matched) in fits else []
            comparisons = compare_all(replicate, refits, policy, engine_kind)
            by_label = {f.label: f for f in [*replicate, *refits]}
            kinds = {label: fit_kind(f, engine_kind) for label, f in by_label.items()}
            for c in comparisons:
                if c.level is not None or c.quantity in ("group_effect", "loglik"):
                    continue
                fit, ref = by_label.get(c.engine), by_label.get(c.reference)
                if fit is None or ref is None:
                    continue
                why = left_out_because(c, fit, ref)
                s = scaled(c, kinds[c.engine], kinds[c.reference]) if why is None else None
                if s is None:
                    tally.leave_out(why or NO_TOLERANCE)
                    continue
                tally.use(s.engines)
                needs.append(s)
                pairs.append({"groups": d.groups, "replicate": r, "engine": c.engine,
                              "reference": c.reference, "quantity": c.quantity,
                              "term": c.term, "difference": c.value - c.reference_value
                              if c.value is not None and c.reference_value is not None
                              else None, "tolerance": c.tolerance,
                              "verdict": c.verdict})
            reference = by_label.get(options.reference)
            refit = refits[0] if refits else None
            for f in replicate:
                if f.engine == options.reference:
                    rows += [_as_reference(x) for x in fit_rows(f, d.groups, r, truth, {})]
                    continue
                against, missing = _judge(f, reference, refit, matched, unlike_possible)
                verdicts = verdicts_against(comparisons, f.engine, against) if against \
                    else {}
                frows = fit_rows(f, d.groups, r, truth,
                                 {k: v for k, (v, _) in verdicts.items()})
                if against is None:  # unlike fits: an honest not_comparable, saying why
                    frows = [replace(x, verdict="not_comparable", reason=missing)
                             for x in frows]
                else:
                    frows = [replace(x, judged_against=against,
                                     reason=verdicts.get((x.quantity, x.term),
                                                         (None, None))[1])
                             for x in frows]
                rows += frows
    # The engines' own fits (a matched refit is not one of the study's engines).
    all_fits = [(g, f) for (g, _, label), f in fits.items() if label != matched]
    calibrated = calibrate(needs, policy, options.quantile)
    design_text = (f"{model.name} ({model.formula}), groups of "
                   f"{designs[0].factor}: {', '.join(str(d.groups) for d in designs)}, "
                   f"{options.replicates} replicates each, engines {', '.join(order)}")
    document: dict[str, Any] = {
        "parity_version": __version__,
        "model": {"name": model.name, "formula": model.formula, "family": model.family},
        "factor": designs[0].factor,
        "designs": [{"groups": d.groups, "n_obs": d.n_obs} for d in designs],
        "replicates": options.replicates,
        "engines": order,
        "reference": options.reference,
        "settings": options.settings.as_dict(),
        "interval": options.settings.interval,
        "calibrate_quantile": options.quantile,
        "sd_intervals": options.sd_intervals,
        "truth": {**truth.to_dict(), "singular": bool(truth_fit.diagnostics.singular)},
        "priors": "Bambi's default priors for the original data, for every replicate "
                  "(each design's model is built once, on its rows with the original "
                  "responses)",
        "scheduler": scheduler,
        "fits": _fit_table(fits),
        "rows": row_dicts(rows),
        "summary": summarize(rows, all_fits),
        "calibrated": [{"pair": c.pair, "quantity": c.quantity, "factor": c.factor,
                        "rtol": c.rule.rtol, "atol": c.rule.atol, "sd_mult": c.rule.sd_mult,
                        "n": c.n, "engines": list(c.engines),
                        "loosening": c.loosening} for c in calibrated],
        "calibrated_from": {"used": tally.used, "left_out": tally.left_out},
        "matched_reference": matched if any(k[2] == matched for k in fits) else None,
        "differences": pairs,
    }
    result = StudyResult(document, rows, needs)
    result.document["calibrated_toml"] = calibrated_toml(calibrated, options.quantile,
                                                         design_text, tally)
    return result


def _as_reference(row: StudyRow) -> StudyRow:
    return replace(row, verdict=REFERENCE)


def _judge(fit: Fit, reference: Fit | None, refit: Fit | None, matched: str,
           unlike_possible: bool) -> tuple[str | None, str | None]:
    """The label `fit` is judged against: the reference's matched-structure refit where
    `fit` has independent random coefficients and the refit has numbers, else the
    reference engine where the two estimate the same structure; or (None, why) where
    there is nothing like it to judge it by."""
    independent = "independent" in fit.structure.values()
    if independent and refit is not None and refit.has_numbers:
        return matched, None
    if reference is None or not unlike_possible or not structures_differ(fit, reference):
        return (reference.label if reference is not None else None), None
    if refit is None:
        why = "the reference engine cannot refit it with independent coefficients"
    else:
        why = f"{matched} {refit.status}: {' '.join(str(refit.reason).split())}"
    g = next(g for g, v in reference.structure.items()
             if g in fit.structure and fit.structure[g] != v)
    return None, (f"{fit.label} fits {g}'s random coefficients as "
                  f"{fit.structure[g]}, {reference.label} as {reference.structure[g]}, "
                  f"and there is no matched-structure reference ({why})")


def _fit_table(fits: dict[tuple[int, int, str], Fit]) -> list[dict[str, Any]]:
    """Per design and engine: fits that ran, did not converge, failed, and their
    seconds (with up to three reasons of the fits that are not ok); for an engine
    compiled once, how many fits compiled (one per worker that got the design) and an
    estimate of what compiling cost."""
    table: dict[tuple[int, str], dict[str, Any]] = {}
    for (g, _, e), f in sorted(fits.items()):
        t = table.setdefault((g, e), {"groups": g, "engine": e, "ok": 0, "unconverged": 0,
                                      "failed": 0, "seconds": [], "reasons": [],
                                      "compiling": []})
        # An unconverged replicate is an outcome the study measures (its rows say so and
        # calibration leaves them out), not a fit that failed to run.
        t[f.status if f.status in ("ok", "unconverged") else "failed"] += 1
        ran = f.provenance.settings.get("ran") or {}
        if ran.get("sampler_run") == 1:  # this fit compiled the model on its worker
            t["compiling"].append(f.provenance.seconds)
        else:
            t["seconds"].append(f.provenance.seconds)
        if f.status != "ok" and len(t["reasons"]) < 3:
            t["reasons"].append(" ".join(str(f.reason).split()))
    out = []
    for t in table.values():
        compiling = t.pop("compiling")
        secs = t.pop("seconds")
        t["compiled"] = len(compiling)
        t["seconds_compiling_runs"] = round(float(np.sum(compiling)), 3)
        # What compiling cost: the compiling runs beyond a typical run's sampling time.
        t["seconds_compile_estimate"] = (round(float(np.mean(compiling) - np.median(secs)), 3)
                                         if compiling and secs else None)
        secs = secs + compiling
        t["seconds_total"] = round(float(np.sum(secs)), 3)
        t["seconds_median"] = round(float(np.median(secs)), 3) if secs else None
        t["seconds_max"] = round(float(np.max(secs)), 3) if secs else None
        out.append(t)
    return out
