"""The posterior fit's model and sampler (`model.fit: posterior`), in numpy and TensorFlow.

A Bayesian factor model of the whole train split, with the data's form and nothing else:

- each tower is linear in its inputs: a query's embedding is ``X_q[query] @ W_q``, the sum of
  its columns' embeddings (one-hot ids, mean-pooled sparse ids, floats times a vector), and a
  candidate's is ``X_c[candidate] @ W_c``, ``latent`` wide;
- score(q, c) = query · candidate + bias_c, and each train row's candidate is the softmax of
  its query's scores over the whole corpus;
- each `features.feedback` value of a row reads the row's score standardised over its query's
  corpus, z: a rating is Normal(centre + shift + slope·z, σ) censored at the scale's ends (a
  value at an end reads "this or beyond"); a count is low + Poisson(exp(α + β·z)); the link
  (shift, slope, log σ per rating; α, β per count) is learned;
- Gaussian priors on every embedding slot (`PosteriorConfig.id_l2` on the query's and the
  candidate's id, `shared_l2` on the rest); the bias is free.

`fit` runs `warm_start_iterations` of L-BFGS towards the mode, then preconditioned Langevin
dynamics, x ← x − ε M⁻¹ ∇U + √(2ε M⁻¹) ξ (U = −log posterior; M the choice likelihood's
diagonal curvature at the start, ×3 for the feedback, floored; the link stays put), and keeps
`samples` states evenly spaced after the burn-in. A chain that diverges (its −log posterior
runs away) before its first record starts again with half the step; later, or after
`STEP_HALVINGS` halvings, the fit fails naming the step. Everything is float64 and full
batch, so distinct queries × candidates is bounded by `max_cells`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tensorflow as tf

from retrain.domain.features import FeedbackFeature, FeedbackKind
from retrain.domain.recommender import PosteriorConfig

# Curvature of the feedback terms relative to the choice likelihood's, for the preconditioner.
FEEDBACK_CURVATURE = 3.0


@dataclass(frozen=True)
class Design:
    """One tower's inputs as a sparse matrix: a row per distinct query (or candidate), a
    column per input slot (an id's row of an embedding table, or a float column)."""

    rows: np.ndarray
    slots: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]
    precision: np.ndarray
    """(slots,) prior precision of each slot's embedding."""

    def matrix(self):
        """The design as a scipy CSR matrix."""
        from scipy.sparse import csr_matrix

        return csr_matrix((self.values, (self.rows, self.slots)), shape=self.shape)

    def tensor(self) -> tf.SparseTensor:
        """The design as a float64 SparseTensor."""
        order = np.lexsort((self.slots, self.rows))
        indices = np.stack([self.rows[order], self.slots[order]], axis=1).astype(np.int64)
        return tf.SparseTensor(indices, self.values[order].astype(np.float64), self.shape)


@dataclass(frozen=True)
class Feedback:
    """One feedback column's values on the train rows (NaN where missing)."""

    feature: FeedbackFeature
    values: np.ndarray


@dataclass(frozen=True)
class TrainRows:
    """The train split as the fit reads it: distinct queries, the corpus, and each row's
    query, candidate and feedback."""

    query: Design
    candidate: Design
    row_query: np.ndarray
    row_candidate: np.ndarray
    feedback: list[Feedback] = field(default_factory=list)

    @property
    def num_queries(self) -> int:
        return self.query.shape[0]

    @property
    def num_candidates(self) -> int:
        return self.candidate.shape[0]


@dataclass
class Samples:
    """Kept posterior samples: (samples, slots, latent) tower weights and (samples, N) bias."""

    query: list[np.ndarray] = field(default_factory=list)
    candidate: list[np.ndarray] = field(default_factory=list)
    bias: list[np.ndarray] = field(default_factory=list)
    step_size: float = 0.0
    """The Langevin step size the samples were drawn with."""

    def __len__(self) -> int:
        return len(self.bias)


def link_start(feedback: list[Feedback]) -> np.ndarray:
    """The link's starting values: slope a quarter of the scale, counts at their mean."""
    start: list[float] = []
    for item in feedback:
        if item.feature.kind == FeedbackKind.RATING:
            start += [0.0, (item.feature.high - item.feature.low) / 4.0, 0.0]
        else:
            present = item.values[~np.isnan(item.values)]
            excess = float(np.mean(present - item.feature.low)) if present.size else 1.0
            start += [float(np.log(max(excess, 1e-3))), 0.5]
    return np.asarray(start, dtype=np.float64)


def feedback_log_likelihood(z: tf.Tensor, item: Feedback, link: tf.Tensor) -> tf.Tensor:
    """Summed log likelihood of one feedback column's present values given the rows'
    standardised scores ``z`` and the column's link."""
    present = ~np.isnan(item.values)
    feature = item.feature
    # Missing values are replaced before the graph: NaN in an unused branch still poisons
    # the gradient.
    values = tf.constant(np.where(present, item.values, feature.low), tf.float64)
    mask = tf.constant(present.astype(np.float64))
    if feature.kind == FeedbackKind.COUNT:
        alpha, beta = tf.unstack(link)
        eta = alpha + beta * z
        return tf.reduce_sum(mask * ((values - feature.low) * eta - tf.exp(eta)))
    shift, slope, log_sigma = tf.unstack(link)
    centre = (feature.low + feature.high) / 2.0
    mean = centre + shift + slope * z
    sigma = (feature.high - feature.low) / 8.0 * tf.exp(log_sigma)
    root2 = tf.constant(math.sqrt(2.0), tf.float64)
    inside = -((values - mean) ** 2) / (2 * sigma**2) - tf.math.log(sigma)
    above = tf.math.log(0.5 * tf.math.erfc((feature.high - mean) / (sigma * root2)) + 1e-300)
    below = tf.math.log(0.5 * tf.math.erfc((mean - feature.low) / (sigma * root2)) + 1e-300)
    rating = tf.where(values >= feature.high, above,
                      tf.where(values <= feature.low, below, inside))
    return tf.reduce_sum(mask * rating)


def link_sizes(feedback: list[Feedback]) -> list[int]:
    """Link parameters per feedback column: 3 for a rating, 2 for a count."""
    return [3 if item.feature.kind == FeedbackKind.RATING else 2 for item in feedback]


class Posterior:
    """−log posterior of the flat parameter vector and its gradient, with TensorFlow."""

    def __init__(self, rows: TrainRows, config: PosteriorConfig) -> None:
        self.rows, self.config = rows, config
        d = config.latent
        self.shapes = [("query", (rows.query.shape[1], d)),
                       ("candidate", (rows.candidate.shape[1], d)),
                       ("bias", (rows.num_candidates,)),
                       ("link", (sum(link_sizes(rows.feedback)),))]
        self.sizes = [math.prod(shape) for _, shape in self.shapes]
        counts = np.zeros((rows.num_queries, rows.num_candidates))
        np.add.at(counts, (rows.row_query, rows.row_candidate), 1.0)
        self.counts = counts
        self._counts = tf.constant(counts)
        self._rows_per_query = tf.constant(counts.sum(axis=1))
        self._xq, self._xc = rows.query.tensor(), rows.candidate.tensor()
        self._row_query = tf.constant(rows.row_query, tf.int64)
        self._row_candidate = tf.constant(rows.row_candidate, tf.int64)
        self._precision_q = tf.constant(rows.query.precision[:, None])
        self._precision_c = tf.constant(rows.candidate.precision[:, None])
        self.value_and_grad = tf.function(self._value_and_grad)

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def unpack(self, x) -> dict:
        """Named parts of a flat parameter vector (numpy or tensor)."""
        parts, start = {}, 0
        for (name, shape), size in zip(self.shapes, self.sizes):
            parts[name] = tf.reshape(x[start:start + size], shape) if tf.is_tensor(x) \
                else np.reshape(x[start:start + size], shape)
            start += size
        return parts

    def towers(self, x):
        """(queries, candidates) embeddings and the parts of ``x``."""
        p = self.unpack(x)
        return (tf.sparse.sparse_dense_matmul(self._xq, p["query"]),
                tf.sparse.sparse_dense_matmul(self._xc, p["candidate"]), p)

    def _neg_log_posterior(self, x):
        queries, candidates, p = self.towers(x)
        scores = queries @ tf.transpose(candidates) + p["bias"]
        log_lik = (tf.reduce_sum(self._counts * scores)
                   - tf.reduce_sum(self._rows_per_query * tf.reduce_logsumexp(scores, 1)))
        if self.rows.feedback:
            mean, std = tf.reduce_mean(scores, 1), tf.math.reduce_std(scores, 1) + 1e-6
            row = (tf.reduce_sum(tf.gather(queries, self._row_query)
                                 * tf.gather(candidates, self._row_candidate), 1)
                   + tf.gather(p["bias"], self._row_candidate))
            z = (row - tf.gather(mean, self._row_query)) / tf.gather(std, self._row_query)
            links = tf.split(p["link"], link_sizes(self.rows.feedback))
            for item, link in zip(self.rows.feedback, links):
                log_lik += feedback_log_likelihood(z, item, link)
        prior = (tf.reduce_sum(self._precision_q * p["query"] ** 2)
                 + tf.reduce_sum(self._precision_c * p["candidate"] ** 2))
        return -log_lik + prior

    def _value_and_grad(self, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = self._neg_log_posterior(x)
        return value, tape.gradient(value, x)

    def inverse_curvature(self, x: np.ndarray) -> np.ndarray:
        """Langevin's M⁻¹: per parameter, 1 / the likelihood's curvature at ``x`` (floored);
        zero for the link, which stays put."""
        queries, candidates, parts = self.towers(tf.constant(x))
        queries, candidates = queries.numpy(), candidates.numpy()
        probs = _softmax(queries @ candidates.T + parts["bias"].numpy())
        n = self.counts.sum(axis=1)
        spread = probs @ candidates**2 - (probs @ candidates) ** 2
        weight = n[:, None] * probs * (1 - probs)
        scale = FEEDBACK_CURVATURE if self.rows.feedback else 1.0
        h_queries = scale * n[:, None] * spread
        h_candidates = scale * (weight.T @ queries**2)
        xq, xc = self.rows.query.matrix(), self.rows.candidate.matrix()
        h_query = xq.multiply(xq).T @ h_queries + 2 * self.rows.query.precision[:, None]
        h_candidate = (xc.multiply(xc).T @ h_candidates
                       + 2 * self.rows.candidate.precision[:, None])
        curvature = np.concatenate([np.ravel(h_query), np.ravel(h_candidate),
                                    weight.sum(axis=0)])
        inverse = 1.0 / np.maximum(curvature, self.config.curvature_floor)
        return np.concatenate([inverse, np.zeros(self.sizes[-1])])


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def langevin(value_and_grad: Callable, x: np.ndarray, inverse_curvature: np.ndarray,
             step_size: float, steps: int, rng: np.random.Generator,
             on_state: Callable[[int, float, np.ndarray], None]) -> np.ndarray:
    """Preconditioned unadjusted Langevin from ``x`` for ``steps`` steps; ``on_state(step,
    value, x)`` sees every state before it moves. Returns the last state."""
    noise = np.sqrt(2.0 * step_size * inverse_curvature)
    for step in range(steps):
        value, grad = value_and_grad(x)
        on_state(step, float(value), x)
        x = x - step_size * inverse_curvature * np.asarray(grad) + noise * rng.standard_normal(
            x.size)
    return x


def kept_steps(config: PosteriorConfig) -> set[int]:
    """The steps whose states are kept: `samples` of them, evenly spaced after the burn-in,
    the last step last."""
    stride = (config.steps - config.burn_in) // config.samples
    return {config.steps - 1 - i * stride for i in range(config.samples)}


# A chain whose −log posterior rises this far per parameter above where it started has left
# the posterior (at equilibrium it sits about half a unit per parameter above the mode).
DIVERGED_PER_PARAMETER = 10.0
# How often the step size is halved, and the chain started again, when it diverges early.
STEP_HALVINGS = 4


class Diverged(Exception):
    """The Langevin chain left the posterior at `step`."""

    def __init__(self, step: int):
        super().__init__(f"diverged at step {step}")
        self.step = step


def stable_langevin(value_and_grad: Callable, x: np.ndarray, inverse_curvature: np.ndarray,
                    step_size: float, steps: int, rng: np.random.Generator,
                    on_state: Callable[[int, float, np.ndarray], None],
                    restartable: Callable[[], bool], log: Callable[[str], None]) -> float:
    """`langevin`, watched: when the −log posterior turns non-finite or rises more than
    `DIVERGED_PER_PARAMETER` per parameter above its start, the chain starts again from ``x``
    with half the step (``on_state`` then sees step 0 again), at most `STEP_HALVINGS` times
    and only while ``restartable()``; else ValueError. Returns the step size that held."""
    limit = [math.inf]

    def watched(step: int, value: float, state: np.ndarray) -> None:
        if step == 0:
            limit[0] = value + DIVERGED_PER_PARAMETER * state.size
        if not value <= limit[0]:  # NaN fails this too
            raise Diverged(step)
        on_state(step, value, state)

    for halving in range(STEP_HALVINGS + 1):
        try:
            langevin(value_and_grad, x, inverse_curvature, step_size, steps, rng, watched)
            return step_size
        except Diverged as error:
            if halving == STEP_HALVINGS or not restartable():
                raise ValueError(
                    f"posterior fit: the Langevin chain diverged at step {error.step} with "
                    f"step size {step_size:g}; lower model.posterior.step_size or raise "
                    "model.posterior.curvature_floor") from None
            log(f"posterior fit: the chain diverged at step {error.step} with step size "
                f"{step_size:g}; starting again from the warm start with {step_size / 2:g}")
            step_size /= 2
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Progress:
    """What `fit` reports after each block of Langevin steps."""

    step: int
    value: float
    seconds: float
    """Since the fit started (the warm start included)."""
    samples: Samples
    current: Samples
    """The block's last state as a one-sample set (for recall before any sample is kept)."""


def fit(rows: TrainRows, config: PosteriorConfig, seed: int | None,
        blocks: int = 1, on_block: Callable[[Progress], None] | None = None,
        log: Callable[[str], None] = print) -> Samples:
    """L-BFGS towards the mode, then Langevin; the kept samples (see the module docstring).
    ``on_block`` is called ``blocks`` times, evenly over the Langevin steps."""
    from scipy.optimize import minimize

    posterior = Posterior(rows, config)
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.1, posterior.size)
    x[posterior.size - posterior.sizes[-1]:] = link_start(rows.feedback)

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = posterior.value_and_grad(tf.constant(flat))
        return float(value), grad.numpy()

    started = time.monotonic()
    x = minimize(objective, x, jac=True, method="L-BFGS-B",
                 options={"maxiter": config.warm_start_iterations}).x
    log(f"posterior fit: warm start {time.monotonic() - started:.0f} s "
        f"({rows.num_queries} queries × {rows.num_candidates} candidates, "
        f"{len(rows.row_query)} rows)")
    keep, samples = kept_steps(config), Samples()
    block_ends = {round(config.steps * (i + 1) / blocks) - 1 for i in range(blocks)}
    recorded = [False]

    def on_state(step: int, value: float, state: np.ndarray) -> None:
        if step == 0:  # a chain started again keeps nothing of the diverged one
            for kept in (samples.query, samples.candidate, samples.bias):
                kept.clear()
        if step in keep or step in block_ends:
            parts = posterior.unpack(state)
            one = (np.array(parts["query"]), np.array(parts["candidate"]),
                   np.array(parts["bias"]))
            if step in keep:
                samples.query.append(one[0])
                samples.candidate.append(one[1])
                samples.bias.append(one[2])
            if step in block_ends and on_block is not None:
                on_block(Progress(step + 1, value, time.monotonic() - started, samples,
                                  Samples([one[0]], [one[1]], [one[2]])))
                recorded[0] = True

    # Records already published cannot be taken back: restart only before the first.
    samples.step_size = stable_langevin(
        lambda flat: posterior.value_and_grad(tf.constant(flat)), x,
        posterior.inverse_curvature(x), config.step_size, config.steps, rng, on_state,
        restartable=lambda: not recorded[0], log=log)
    return samples
