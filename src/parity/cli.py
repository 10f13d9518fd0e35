"""The `parity` command line.

Errors meant for users (ParityError) end in one line on stderr and an exit code:
2 for usage errors, 1 when a fit failed. `--debug` shows the traceback instead.
Heavy libraries are imported only by the engine workers, so `parity --help` is quick.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from parity.errors import ParityError, UsageError
from parity.pipeline.interrupt import sigterm_as_interrupt
from parity.pipeline.partial import PARTIAL_NAME
from parity.registry import DEFAULT_ENGINES, ENGINE_NAMES, rows
from parity.settings import OPTION_SETTINGS, Settings
from parity.spec.family import FAMILIES

if TYPE_CHECKING:
    import pandas as pd

    from parity.spec.models import Model


# The engines the options' help names, read from the registry rather than listed here.
_FREQUENTIST = tuple(r.name for r in rows() if r.kind == "frequentist")
_OPT_IN = tuple(r.name for r in rows() if not r.default)
_DRAWS = tuple(r.name for r in rows() if r.draws)
_R = tuple(r.name for r in rows() if r.process == "r")


def _names(names: Sequence[str]) -> str:
    return ", ".join(names)


def _csv_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _int_list(text: str) -> list[int]:
    """Whole numbers, comma-separated; empty items are dropped, so `--groups ,` is an
    empty list, which the study refuses (it must not fall back to the defaults)."""
    try:
        return [int(p) for p in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                         "whole numbers") from None


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="a models.toml naming data, models, engines, sampler settings "
                             "and tolerances (options given beside it override it)")
    parser.add_argument("--models", type=_csv_list, default=None,
                        help="seed models, or models of --config (comma-separated names; "
                             "default: all)")
    parser.add_argument("--data", type=Path, default=None, help="a CSV file of your own")
    parser.add_argument("--r-dataset", default=None, metavar="PKG::NAME",
                        help="a data set shipped with an installed R package "
                             "(e.g. lme4::sleepstudy); its factors are categorical")
    parser.add_argument("--formula", action="append", default=None,
                        help="a model formula in lme4 syntax (repeatable; needs --data or "
                             "--r-dataset)")
    parser.add_argument("--categorical", type=_csv_list, default=None,
                        help="categorical columns of the data (comma-separated)")
    parser.add_argument("--family", default=None, choices=tuple(FAMILIES),
                        help="the response family of the --formula models (default: "
                             "gaussian); coefficients are compared on its link scale")
    parser.add_argument("--trials", default=None, metavar="COLUMN",
                        help="binomial counts: the column holding each row's number of "
                             "trials (without it a binomial response is 0/1)")
    parser.add_argument("--weights", default=None, metavar="COLUMN",
                        help="prior weights of the --formula models (lme4's `weights`): "
                             "finite numbers above 0; engines without them refuse the model")
    parser.add_argument("--nagq", type=int, default=None,
                        help="glmer's nAGQ for a GLMM: 1 the Laplace approximation (the "
                             "default); 2-25 adaptive Gauss-Hermite points, for one scalar "
                             "random effect only; 0 lme4's fast fit (fixed effects from "
                             "PIRLS, Laplace for the variances)")
    criterion = parser.add_mutually_exclusive_group()
    criterion.add_argument("--reml", dest="reml", action="store_const", const=True,
                           default=None,
                           help=f"fit the frequentist engines ({_names(_FREQUENTIST)}) "
                                "by REML (the default)")
    criterion.add_argument("--ml", dest="reml", action="store_const", const=False,
                           help="fit the frequentist engines by maximum likelihood (lme4's "
                                "REML = FALSE); Bayesian engines are unaffected")


_OPTION_HELP = {
    "interval": "the level of every engine's interval, one for all (Wald, profile or "
                "posterior)",
    "ddf": "lme4's degrees of freedom for its t-tests: satterthwaite (lmerTest), "
           "kenward-roger (pbkrtest; REML fits only) or none (Wald-z tests and "
           "intervals: quicker on large data, whose df are large)",
    "profile": "lme4's profile-likelihood intervals of fixed effects and variance "
               "components in place of Wald intervals (slower)",
}


def _add_sampler_args(parser: argparse.ArgumentParser) -> None:
    """`--draws`, `--tune`, `--chains`, `--target-accept`, `--seed`: the Settings fields
    that are options, typed as their defaults (their ranges are checked by Settings)."""
    defaults = Settings()
    for name in OPTION_SETTINGS:
        default = getattr(defaults, name)
        flag = f"--{name.replace('_', '-')}"
        if isinstance(default, bool):
            parser.add_argument(flag, dest=name, action="store_const", const=True,
                                default=None, help=_OPTION_HELP.get(name))
        else:
            parser.add_argument(flag, dest=name, type=type(default), default=None,
                                help=_OPTION_HELP.get(name, "sampler setting") +
                                f" (default {default})")


def build_parser() -> argparse.ArgumentParser:
    # --debug is taken before or after the command: one declaration, every parser's parent.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = argparse.ArgumentParser(
        prog="parity", parents=[common],
        description=f"Where mixed-model engines ({_names(ENGINE_NAMES)}) agree on a model, "
                    "term by term.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[common],
                         help="fit models with each engine and write the comparison")
    _add_model_args(run)
    run.add_argument("--engines", type=_csv_list, default=None,
                     help=f"engines (comma-separated; default: {','.join(DEFAULT_ENGINES)}; "
                          f"also {_names(_OPT_IN)})")
    _add_sampler_args(run)
    run.add_argument("--tolerances", type=Path, default=None,
                     help="a TOML file overriding the tolerance policy (refused if it "
                          "loosens a default rule more than 10x)")
    run.add_argument("--allow-loose-tolerances", action="store_true",
                     help="accept a --tolerances file that loosens a default rule more "
                          "than 10x (e.g. a study's tolerances.calibrated.toml)")
    run.add_argument("--out", type=Path, required=True, help="directory for the results")
    run.add_argument("--save-draws", action="store_true",
                     help=f"keep the posterior draws of {_names(_DRAWS)} as NetCDF in "
                          "OUT/draws/ (<model>.<engine>.nc, for ArviZ); those fits are "
                          "sampled afresh")
    run.add_argument("--no-cache", action="store_true",
                     help="refit everything; neither read nor write the fit cache")
    run.add_argument("--compare-unconverged", action="store_true",
                     help="compare the rows of fits that did not converge too (marked, "
                          "and counted apart); by default they are not comparable")
    run.add_argument("--jobs", type=int, default=None,
                     help="worker processes for Bambi (default: 1, whose chains run in "
                          "parallel on every core; more fit models side by side, at one "
                          "JAX runtime's memory each)")
    run.add_argument("--max-minutes", type=float, default=None, metavar="M",
                     help="refuse (unsupported, with the estimate) a fit its engine "
                          "estimates longer than M minutes (default 30; statsmodels' "
                          "dense designs and Bambi make estimates)")
    run.add_argument("--priors", metavar="FILE",
                     help="a TOML file of the Bayesian engines' priors by class (intercept, "
                          "fixed, sd, residual, lkj; see docs/priors.md); default: Bambi's")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    record = sub.add_parser(
        "record", parents=[common],
        help=f"store live fits of the R engines ({_names(_R)}) as references for machines "
             "without them")
    _add_model_args(record)
    record.add_argument("--out", type=Path, required=True,
                        help="directory for the records (point $PARITY_REFERENCES at it)")
    record.add_argument("--engines", type=_csv_list, default=None,
                        help=f"R engines to record (comma-separated: {_names(_R)}; "
                             "default: lme4)")
    study = sub.add_parser(
        "study", parents=[common],
        help="simulate from lme4's fit and measure where the engines agree, on Dask")
    _add_model_args(study)
    study.add_argument("--model", dest="models", type=lambda t: [t.strip()], default=None,
                       metavar="NAME", help="the model to study (a seed model, or one of "
                                            "--config's); --formula gives your own")
    study.add_argument("--groups", type=_int_list, default=None,
                       help="numbers of groups of the first grouping factor, one design "
                            "each (default: the data's number, ×2 and ×4)")
    study.add_argument("--replicates", type=int, default=100,
                       help="replicates per design (default 100)")
    study.add_argument("--engines", type=_csv_list, default=None,
                       help=f"engines (default: {_names(DEFAULT_ENGINES)})")
    study.add_argument("--reference", default="lme4",
                       help="the engine every verdict is against (default lme4)")
    _add_sampler_args(study)
    study.add_argument("--tolerances", type=Path, default=None,
                       help="the tolerance policy the verdicts and the calibration start from")
    study.add_argument("--calibrate-quantile", type=float, default=0.99,
                       help="share of replicate rows that the calibrated tolerances let "
                            "agree (default 0.99)")
    study.add_argument("--workers", type=int, default=None,
                       help="worker processes of the local Dask cluster (default: one "
                            "per core)")
    study.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="an existing Dask scheduler (tcp://host:8786) to run on")
    study.add_argument("--batch-size", type=int, default=None,
                       help="replicates per task (default: enough tasks for every worker)")
    study.add_argument("--sd-intervals", choices=("profile", "none"), default="profile",
                       help="lme4's intervals of its SDs: profile likelihood (default; "
                            "about three times the fit's own time), or none (lme4's SDs "
                            "then have no coverage)")
    study.add_argument("--out", type=Path, required=True, help="directory for the study")
    study.add_argument("--quiet", action="store_true", help="no progress display")
    diff = sub.add_parser("diff", parents=[common],
                          help="what moved between two results.json files")
    diff.add_argument("a", type=Path, help="the baseline results.json (or its directory)")
    diff.add_argument("b", type=Path, help="the results.json to compare with it")
    diff.add_argument("--tolerances", type=Path, default=None,
                      help="a TOML file overriding the tolerance policy")
    diff.add_argument("--all", action="store_true",
                      help="show every value and comparison row, not only what moved")
    return parser


def cmd_record(args: argparse.Namespace) -> int:
    from parity.inputs.request import resolve_request
    from parity.pipeline.job import record_job

    # Only --engines chooses what to record: a models.toml's engines are those to compare.
    request = resolve_request(args, default_engines=("lme4",), config_engines=False)
    for path in record_job(request.models, request.frame, request.settings, args.out,
                           request.engines):
        print(f"recorded: {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from parity.compare.tolerances import check_loosening
    from parity.engines.budget import minutes_problem
    from parity.inputs.request import resolve_request
    from parity.pipeline.cache import FitCache
    from parity.pipeline.job import run_job
    from parity.pipeline.outdir import DRAWS_DIR
    from parity.pipeline.progress import Progress

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    problem = minutes_problem(args.max_minutes)
    if problem:
        raise UsageError(f"--max-minutes {problem}")
    check_loosening(args.tolerances, args.allow_loose_tolerances)
    draws_dir = str(Path(args.out) / DRAWS_DIR) if args.save_draws else None
    request = resolve_request(args, save_draws=draws_dir)
    models, engines = request.models, request.engines

    with Progress(quiet=args.quiet) as progress:
        result = run_job(models, request.frame, engines, request.settings, args.out,
                         on_fit=progress.done, policy=request.policy,
                         cache=FitCache(enabled=not args.no_cache),
                         jobs=args.jobs, on_start=progress.start,
                         compare_unconverged=args.compare_unconverged,
                         max_minutes=args.max_minutes)
    if not args.quiet and result.comparisons:
        from parity.reports.terminal import matrix_text, use_colour, verdict_line

        print(verdict_line(result.comparisons))
        print(matrix_text(result.comparisons, [m.name for m in models],
                          colour=use_colour(sys.stdout)))
        print()
    print(f"results: {result.results_path}")
    for kind, path in result.reports.items():
        print(f"{kind + ':':9s}{path}")
    for f in [*result.fits, *result.results.reference_fits]:
        if f.status == "unconverged":
            print(f"unconverged: {f.model} / {f.label}: {' '.join(str(f.reason).split())}",
                  file=sys.stderr)
    bad = [f for f in result.fits if f.status == "failed"]
    if bad:
        for f in bad:
            reason = " ".join(str(f.reason).split())
            print(f"failed: {f.model} / {f.engine}: {reason}", file=sys.stderr)
        return 1
    if len(set(engines)) > 1 and not result.comparisons:
        # Asked to compare, compared nothing: that is not a success, whatever the cause.
        skipped = [f for f in result.fits if f.status != "ok"]
        why = "; ".join(f"{f.model} / {f.engine}: {f.status}: {' '.join(str(f.reason).split())}"
                        for f in skipped[:3]) or "no two engines fitted the same model"
        print(f"parity: nothing was compared ({why})", file=sys.stderr)
        return 1
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    """A simulation study of one model (see parity.study)."""
    from parity.inputs.request import resolve_request
    from parity.study.run import StudyOptions, run_study

    request = resolve_request(args)
    if len(request.models) != 1:
        raise UsageError(f"a study is of one model; name it with --model (have "
                         f"{', '.join(m.name for m in request.models)})")
    model = request.models[0]
    groups = tuple(args.groups) if args.groups is not None else \
        _default_groups(model, request.frame)
    options = StudyOptions(groups=groups, replicates=args.replicates,
                           engines=request.engines, settings=request.settings,
                           out=args.out, reference=args.reference,
                           workers=args.workers, scheduler=args.scheduler,
                           batch_size=args.batch_size, quantile=args.calibrate_quantile,
                           quiet=args.quiet, sd_intervals=args.sd_intervals)
    try:
        result = run_study(model, request.frame, options, request.policy,
                           on_stage=None if args.quiet else
                           (lambda text: print(f"study: {text}", file=sys.stderr)))
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (interrupt.Terminated)
        print(f"parity: interrupted; the finished batches are kept in "
              f"{Path(args.out) / 'study.batches'} and a rerun resumes from them",
              file=sys.stderr)
        return int(getattr(exc, "exit_code", 130))
    for kind, path in result.paths.items():
        if not kind.startswith("figure"):
            print(f"{kind + ':':12s}{path}")
    # A replicate that did not converge is one of the study's findings (its rows say
    # so); a fit that failed to run at all makes the study incomplete: exit 1.
    for f in result.document["fits"]:
        for what in ("failed", "unconverged"):
            if f.get(what):
                print(f"{what}: {f['engine']} at {f['groups']} groups: {f[what]} fits "
                      f"({'; '.join(f['reasons'])})", file=sys.stderr)
    return 1 if any(f["failed"] for f in result.document["fits"]) else 0


def _default_groups(model: Model, frame: pd.DataFrame) -> tuple[int, ...]:
    """The data's number of groups of the first grouping factor, twice and four times it."""
    from parity.rows.prepare import prepare
    from parity.study.design import study_factor

    factor = study_factor(model)
    data = prepare(frame, model.spec, model.categorical, model.fam, model.trials,
                   model.weights)
    n = len(data.levels.get(factor) or data.frame[factor].unique())
    return (n, 2 * n, 4 * n)


def cmd_diff(args: argparse.Namespace) -> int:
    """Exit 1 when a verdict flipped or a fit's ok-ness changed, so CI can gate on it."""
    from parity.compare.diff import diff_files
    from parity.compare.tolerances import load_policy

    report = diff_files(args.a, args.b, load_policy(args.tolerances))
    print(report.render(all_rows=args.all), end="")
    return 1 if report.flipped else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or "--debug" in argv
    try:
        with sigterm_as_interrupt():
            if args.command == "run":
                return cmd_run(args)
            if args.command == "diff":
                return cmd_diff(args)
            if args.command == "record":
                return cmd_record(args)
            if args.command == "study":
                return cmd_study(args)
            raise UsageError(f"unknown command {args.command!r}")
    except ParityError as exc:
        if debug:
            traceback.print_exc()
        print(f"parity: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (interrupt.Terminated)
        partial = Path(getattr(args, "out", None) or ".") / PARTIAL_NAME
        kept = f"; the fits so far are in {partial}" if partial.is_file() else ""
        print(f"parity: interrupted{kept}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 130))
    except Exception as exc:  # a bug: still one line unless --debug
        if debug:
            traceback.print_exc()
        print(f"parity: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(rerun with --debug)", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    """Messages may quote R or a library over several lines; the CLI prints one."""
    return " ".join(str(exc).split())


def entry() -> None:
    """The `parity` command. Once `main` has returned, everything is written: a Ctrl-C
    while the interpreter shuts down (joining its worker pools' threads) would end it
    by SIGINT with no message and a misleading status, so it is ignored from then on."""
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
