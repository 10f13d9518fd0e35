"""A study's fits turned into its record: the verdicts of each replicate, the rows, the
summary, the calibrated tolerances and the table of fits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from parity import __version__
from parity.compare.rules import compare_all, fit_kind
from parity.compare.tolerances import Policy
from parity.registry import engine_kind
from parity.schema import Fit
from parity.spec.models import Model
from parity.study.calibrate import Scaled, calibrate, calibrated_toml, scaled
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
    order = [options.reference] + [e for e in options.engines if e != options.reference]
    rows: list[StudyRow] = []
    needs: list[Scaled] = []
    pairs: list[dict[str, Any]] = []
    for d in designs:
        for r in range(options.replicates):
            replicate = [fits[(d.groups, r, e)] for e in order if (d.groups, r, e) in fits]
            comparisons = compare_all(replicate, [], policy, engine_kind)
            kinds = {f.engine: fit_kind(f, engine_kind) for f in replicate}
            for c in comparisons:
                if c.level is not None or c.quantity in ("group_effect", "loglik"):
                    continue
                s = scaled(c, kinds[c.engine], kinds[c.reference])
                if s is not None:
                    needs.append(s)
                    pairs.append({"groups": d.groups, "replicate": r, "engine": c.engine,
                                  "reference": c.reference, "quantity": c.quantity,
                                  "term": c.term, "difference": c.value - c.reference_value
                                  if c.value is not None and c.reference_value is not None
                                  else None, "tolerance": c.tolerance,
                                  "verdict": c.verdict})
            for f in replicate:
                verdicts = ({} if f.engine == options.reference else
                            verdicts_against(comparisons, f.engine, options.reference))
                frows = fit_rows(f, d.groups, r, truth, verdicts)
                if f.engine == options.reference:
                    frows = [_as_reference(x) for x in frows]
                rows += frows
    all_fits = [(g, f) for (g, _, _), f in fits.items()]
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
                        "n": c.n, "engines": list(c.engines)} for c in calibrated],
        "differences": pairs,
    }
    result = StudyResult(document, rows, needs)
    result.document["calibrated_toml"] = calibrated_toml(calibrated, options.quantile,
                                                         design_text)
    return result


def _as_reference(row: StudyRow) -> StudyRow:
    from dataclasses import replace

    return replace(row, verdict=REFERENCE)


def _fit_table(fits: dict[tuple[int, int, str], Fit]) -> list[dict[str, Any]]:
    """Per design and engine: fits that ran, failed, and their seconds; for an engine
    compiled once, how many fits compiled (one per worker that got the design) and an
    estimate of what compiling cost."""
    table: dict[tuple[int, str], dict[str, Any]] = {}
    for (g, _, e), f in sorted(fits.items()):
        t = table.setdefault((g, e), {"groups": g, "engine": e, "ok": 0, "failed": 0,
                                      "seconds": [], "reasons": [], "compiling": []})
        t["ok" if f.status == "ok" else "failed"] += 1
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
