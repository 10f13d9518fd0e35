"""A child process fitting one batch with an engine that embeds R (see
:mod:`parity.study.tasks`): `python -m parity.study.child job.pkl fits.pkl`."""

from __future__ import annotations

import pickle
import sys


def main(argv: list[str]) -> int:
    from parity.pipeline.workers import _init_worker, fit_one

    _init_worker(None, 1)
    job, out = argv
    with open(job, "rb") as fh:
        engine, model, datas, settings = pickle.load(fh)
    fits = [fit_one(engine, model, d, settings) for d in datas]
    with open(out + ".tmp", "wb") as fh:
        pickle.dump(fits, fh)
    import os

    os.replace(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
