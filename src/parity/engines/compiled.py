"""One PyMC model, compiled to JAX once, sampled for many responses (for studies).

A Bambi fit is mostly JAX compilation: `Model.fit` turns the model's log density into a
JAX function with the observed response baked in as a constant, so every new response
compiles the whole NUTS loop again. In a simulation study the model is the same for
every replicate and only the response changes. Here the response is an *input* of the
compiled log density (the observed constant is replaced by a symbolic vector), the log
density is wrapped in a numpyro model whose argument is the response, and numpyro's NUTS
kernel samples it with the same compiled loop for every response of the design's length.

The sampling loop is one function (NUTS steps under `lax.scan`, the chains under `pmap`
or `vmap`) held by the sampler and called with the response: numpyro's `MCMC.run`
would build a new closure per call, which JAX compiles again each time, so a long study
would compile once per replicate (and accumulate compiled code until the process runs out
of memory maps). The kernel's initial state is computed inside the loop, from the
response, the seed and PyMC's jittered start.

The numbers sampled are the model's *value variables* (its unconstrained
parametrisation); the variables a fit reports (SDs, group effects, deterministics) are
computed from them by a second compiled function, as PyMC does after its own JAX
samplers. What the model's builder does after sampling (Bambi's intercept of uncentred
predictors) is the caller's, tested against the library's own fit on the same data.

Because the model is built once on the study's design, data-dependent default priors
(Bambi's) are those of the data it was built with, for every replicate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from parity.settings import Settings


@dataclass
class Draws:
    """What a sampler run gives, in the shape the engines read an InferenceData:
    `posterior` (chain, draw, …) and `sample_stats` (with `diverging`), both xarray."""

    posterior: Any
    sample_stats: Any
    seconds: float


def _devices() -> int:
    import jax

    return int(jax.local_device_count())


class CompiledSampler:
    """NUTS through numpyro on a PyMC model whose observed response is an argument.

    `outputs` names the model variables to report (free variables on their own scale
    and deterministics). Sampler settings are fixed per instance; the response and the
    seed change per call."""

    def __init__(self, pm_model: Any, outputs: list[str], settings: Settings) -> None:
        import jax
        import numpyro
        import numpyro.distributions as dist
        import pytensor.tensor as pt
        from numpyro.infer import NUTS
        from pymc.sampling.jax import get_jaxified_graph
        from pytensor.graph.replace import graph_replace

        observed = list(pm_model.observed_RVs)
        if len(observed) != 1:
            raise ValueError(f"a compiled sampler needs one observed variable, "
                             f"not {len(observed)}")
        constant = pm_model.rvs_to_values[observed[0]]
        self.n_obs = int(np.asarray(constant.data).shape[0])
        response = pt.vector("parity_response", dtype=constant.dtype)
        [logp] = graph_replace([pm_model.logp()], {constant: response}, strict=False)
        value_vars = list(pm_model.value_vars)
        self._names = [v.name for v in value_vars]
        point = pm_model.initial_point()
        self._initial = {n: np.asarray(point[n], dtype=float) for n in self._names}
        log_density = get_jaxified_graph(inputs=[*value_vars, response], outputs=[logp])
        named = {v.name: v for v in pm_model.unobserved_value_vars}
        missing = [n for n in outputs if n not in named]
        if missing:
            raise ValueError(f"no model variable {', '.join(missing)} to report")
        self.outputs = list(outputs)
        report = get_jaxified_graph(inputs=value_vars, outputs=[named[n] for n in outputs])
        self._report = jax.jit(jax.vmap(lambda *xs: tuple(report(*xs))))
        self._dims = {n: tuple(pm_model.named_vars_to_dims.get(n, ()) or ()) for n in outputs}
        self._coords = {k: list(v) for k, v in pm_model.coords.items() if v is not None}
        names, shapes = self._names, {n: self._initial[n].shape for n in self._names}

        def numpyro_model(y: Any) -> None:
            values = [numpyro.sample(n, dist.ImproperUniform(
                dist.constraints.real, (), event_shape=shapes[n])) for n in names]
            numpyro.factor("parity_logp", log_density(*values, y)[0])

        self.settings = settings
        self.chain_method = "parallel" if _devices() >= settings.chains else "vectorized"
        self._kernel = NUTS(numpyro_model, target_accept_prob=settings.target_accept)
        kernel, tune, draws = self._kernel, settings.tune, settings.draws

        def chain(key: Any, start: Any, y: Any) -> Any:
            """One chain: the kernel's initial state, `tune` adapting steps (the kernel
            adapts while its step count is below the warmup it was initialised with),
            then `draws` kept ones."""
            state = kernel.init(key, tune, start, model_args=(y,), model_kwargs={})

            def step(s: Any, _: Any) -> Any:
                s = kernel.sample(s, (y,), {})
                return s, (s.z, s.diverging)

            state = jax.lax.scan(lambda s, _: (kernel.sample(s, (y,), {}), None), state,
                                 None, length=tune)[0]
            return jax.lax.scan(step, state, None, length=draws)[1]

        # One function object for the life of the sampler, so JAX compiles the whole
        # sampling loop once per design: MCMC.run would wrap it in a new closure (and
        # compile it again) for every response.
        if self.chain_method == "parallel":
            self._run = jax.pmap(chain, in_axes=(0, 0, None))
        else:
            self._run = jax.jit(jax.vmap(chain, in_axes=(0, 0, None)))
        self.runs = 0

    def _start(self, seed: int) -> dict[str, np.ndarray]:
        """PyMC's start: the model's initial point, jittered by U(-1, 1) per chain on the
        unconstrained scale."""
        rng = np.random.default_rng(seed)
        chains = self.settings.chains
        return {n: v + rng.uniform(-1, 1, size=(chains, *v.shape))
                for n, v in self._initial.items()}

    def sample(self, y: np.ndarray, seed: int) -> Draws:
        """Draws for response `y` (as long as the design's), reproducible from `seed`."""
        import jax
        import jax.numpy as jnp
        import xarray as xr

        y = np.asarray(y, dtype=float)
        if y.shape != (self.n_obs,):
            raise ValueError(f"response of shape {y.shape}, the design has {self.n_obs} rows")
        start = time.perf_counter()
        keys = jax.random.split(jax.random.PRNGKey(seed), self.settings.chains)
        raw, diverging = self._run(keys, self._start(seed), jnp.asarray(y))
        diverging = np.asarray(diverging)
        chains, draws = diverging.shape[:2]
        flat = [jnp.reshape(raw[n], (chains * draws, *self._initial[n].shape))
                for n in self._names]
        reported = self._report(*flat)
        seconds = time.perf_counter() - start
        data = {}
        for name, arr in zip(self.outputs, reported, strict=True):
            values = np.asarray(arr).reshape(chains, draws, *np.shape(arr)[1:])
            dims = self._dims[name]
            if len(dims) != values.ndim - 2:
                dims = tuple(f"{name}_dim_{i}" for i in range(values.ndim - 2))
            data[name] = (("chain", "draw", *dims), values)
        used = {d for _, (dims, _) in data.items() for d in dims}
        coords = {k: v for k, v in self._coords.items() if k in used}
        coords.update(chain=list(range(chains)), draw=list(range(draws)))
        attrs = {"inference_library": "numpyro", "tuning_steps": self.settings.tune,
                 "inference_library_version": _numpyro_version(),
                 "chain_method": self.chain_method, "compiled_once": True}
        posterior = xr.Dataset(data, coords=coords, attrs=attrs)
        stats = xr.Dataset({"diverging": (("chain", "draw"), diverging.astype(bool))},
                           coords={"chain": list(range(chains)), "draw": list(range(draws))},
                           attrs=attrs)
        self.runs += 1
        return Draws(posterior, stats, seconds)


def _numpyro_version() -> str:
    from importlib.metadata import version

    return version("numpyro")
