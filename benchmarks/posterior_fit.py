"""How far a learner that knows nothing planted can get: a Bayesian factor model's posterior
predictive, fitted with everything the benchmark's train rows hold (a reference, not a peer).

The model has the data's form and no planted value in it:

- score(b, p) = (u_b + c_city(b)) · (v_p + k_category(p)) + bias_p;
- each train row's product: the softmax of its buyer's scores over the whole catalogue;
- with ``feedback``, the row's rating: Normal(3 + a + s·z, σ) censored to [1, 5] (a 5.0 reads
  "5 or more", a 1.0 "1 or less"), and its quantity − 1: Poisson(exp(α + β·z)), where z is the
  row's score standardised over its buyer's catalogue; the link (a, s, σ, α, β) is learned;
- Gaussian priors: ``l2`` on every buyer and product row, ``group_l2`` on the city and
  category rows; the product bias is free.

It is fitted in two steps, in float64 on the full batch with TensorFlow's gradients:

1. ``map_iterations`` of L-BFGS from a small random start towards the maximum a
   posteriori (MAP) point (500 stop short of it: the Langevin burn-in goes the rest);
2. preconditioned Langevin dynamics from there, x ← x − ε M⁻¹ ∇U(x) + √(2ε M⁻¹) ξ with
   U = −log posterior and M the diagonal curvature of the choice likelihood at the start
   point (×3 for the feedback terms, floored at ``curvature_floor``); the link stays at its
   MAP value.

A buyer's score of a product is its choice probability averaged over the samples after the
burn-in: the posterior predictive. The start point's scores come back too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

LINK_START = (0.0, 1.0, 0.0, 0.3, 0.5)
# Curvature of the feedback terms relative to the choice likelihood's, for the preconditioner.
FEEDBACK_CURVATURE = 3.0
RATING_CENTER, RATING_MIN, RATING_MAX = 3.0, 1.0, 5.0
# Ratings are written with one decimal: within half a step of an end, a rating is censored.
CENSOR_MARGIN = 0.05


@dataclass(frozen=True)
class PosteriorFitConfig:
    """The model's size and priors, and the two fitting steps' budgets."""

    latent: int = 8
    l2: float = 1.0
    group_l2: float = 1e-3
    feedback: bool = True
    map_iterations: int = 500
    steps: int = 2500
    burn_in: int = 500
    step_size: float = 0.05
    curvature_floor: float = 20.0
    seed: int = 0


@dataclass(frozen=True)
class TrainRows:
    """Train rows by index, and each buyer's and product's group (city, category)."""

    buyers: np.ndarray
    products: np.ndarray
    ratings: np.ndarray
    quantities: np.ndarray
    buyer_group: np.ndarray
    product_group: np.ndarray

    @property
    def num_buyers(self) -> int:
        return len(self.buyer_group)

    @property
    def num_products(self) -> int:
        return len(self.product_group)


@dataclass(frozen=True)
class PosteriorFit:
    """(buyers, products) scores of the L-BFGS start point and of the posterior predictive."""

    start_scores: np.ndarray
    predictive: np.ndarray
    link: tuple[float, ...]
    samples: int
    start_seconds: float
    sample_seconds: float


def feedback_log_likelihood(tf, z, ratings, quantities, link):
    """Summed log likelihood of the rows' ratings (censored normal) and quantities
    (Poisson of quantity − 1) given their standardised scores ``z`` and the link."""
    shift, slope, log_sigma, alpha, beta = tf.unstack(link)
    mean = RATING_CENTER + shift + slope * z
    sigma = 0.5 * tf.exp(log_sigma)
    root2 = tf.constant(math.sqrt(2.0), z.dtype)
    inside = -((ratings - mean) ** 2) / (2 * sigma**2) - tf.math.log(sigma)
    above = tf.math.log(0.5 * tf.math.erfc((RATING_MAX - CENSOR_MARGIN - mean) / (sigma * root2))
                        + 1e-300)
    below = tf.math.log(0.5 * tf.math.erfc((mean - RATING_MIN - CENSOR_MARGIN) / (sigma * root2))
                        + 1e-300)
    rating = tf.where(ratings >= RATING_MAX - CENSOR_MARGIN, above,
                      tf.where(ratings <= RATING_MIN + CENSOR_MARGIN, below, inside))
    eta = alpha + beta * z
    return tf.reduce_sum(rating) + tf.reduce_sum((quantities - 1) * eta - tf.exp(eta))


class _Posterior:
    """−log posterior of the flat parameter vector, its gradient and the choice probabilities."""

    def __init__(self, rows: TrainRows, config: PosteriorFitConfig) -> None:
        import tensorflow as tf

        self.tf, self.config = tf, config
        d = config.latent
        groups_b, groups_p = int(rows.buyer_group.max()) + 1, int(rows.product_group.max()) + 1
        self.shapes = [("u", (rows.num_buyers, d)), ("c", (groups_b, d)),
                       ("v", (rows.num_products, d)), ("k", (groups_p, d)),
                       ("bias", (rows.num_products,)), ("link", (len(LINK_START),))]
        self.sizes = [math.prod(shape) for _, shape in self.shapes]
        counts = np.zeros((rows.num_buyers, rows.num_products))
        np.add.at(counts, (rows.buyers, rows.products), 1.0)
        self.counts = counts
        self._counts = tf.constant(counts)
        self._rows_per_buyer = tf.constant(counts.sum(axis=1))
        self._buyers, self._products = tf.constant(rows.buyers), tf.constant(rows.products)
        self._ratings = tf.constant(rows.ratings, tf.float64)
        self._quantities = tf.constant(rows.quantities, tf.float64)
        self._buyer_group = tf.constant(rows.buyer_group)
        self._product_group = tf.constant(rows.product_group)
        self.value_and_grad = tf.function(self._value_and_grad)

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def unpack(self, x):
        parts, start = {}, 0
        for (name, shape), size in zip(self.shapes, self.sizes):
            parts[name] = self.tf.reshape(x[start:start + size], shape)
            start += size
        return parts

    def towers(self, x):
        p = self.unpack(x)
        tf = self.tf
        buyers = p["u"] + tf.gather(p["c"], self._buyer_group)
        products = p["v"] + tf.gather(p["k"], self._product_group)
        return buyers, products, p

    def scores(self, x):
        buyers, products, p = self.towers(x)
        return buyers @ self.tf.transpose(products) + p["bias"]

    def _neg_log_posterior(self, x):
        tf, config = self.tf, self.config
        buyers, products, p = self.towers(x)
        scores = buyers @ tf.transpose(products) + p["bias"]
        log_lik = (tf.reduce_sum(self._counts * scores)
                   - tf.reduce_sum(self._rows_per_buyer * tf.reduce_logsumexp(scores, 1)))
        if config.feedback:
            mean, std = tf.reduce_mean(scores, 1), tf.math.reduce_std(scores, 1) + 1e-6
            row = (tf.reduce_sum(tf.gather(buyers, self._buyers)
                                 * tf.gather(products, self._products), 1)
                   + tf.gather(p["bias"], self._products))
            z = (row - tf.gather(mean, self._buyers)) / tf.gather(std, self._buyers)
            log_lik += feedback_log_likelihood(tf, z, self._ratings, self._quantities,
                                               p["link"])
        prior = (config.l2 * (tf.reduce_sum(p["u"] ** 2) + tf.reduce_sum(p["v"] ** 2))
                 + config.group_l2 * (tf.reduce_sum(p["c"] ** 2) + tf.reduce_sum(p["k"] ** 2)))
        return -log_lik + prior, scores

    def _value_and_grad(self, x):
        with self.tf.GradientTape() as tape:
            tape.watch(x)
            value, scores = self._neg_log_posterior(x)
        return value, tape.gradient(value, x), self.tf.nn.softmax(scores, 1)

    def inverse_curvature(self, x: np.ndarray) -> np.ndarray:
        """Langevin's M⁻¹: per parameter, 1 / the choice likelihood's curvature at ``x``."""
        config = self.config
        buyers, products, parts = self.towers(self.tf.constant(x))
        buyers, products = buyers.numpy(), products.numpy()
        probs = _softmax(buyers @ products.T + parts["bias"].numpy())
        n = self.counts.sum(axis=1)
        spread = probs @ products**2 - (probs @ products) ** 2
        weight = n[:, None] * probs * (1 - probs)
        scale = FEEDBACK_CURVATURE if config.feedback else 1.0
        h_u = scale * n[:, None] * spread + 2 * config.l2
        h_v = scale * (weight.T @ buyers**2) + 2 * config.l2
        h_c = np.zeros(tuple(parts["c"].shape))
        np.add.at(h_c, self._buyer_group.numpy(), h_u)
        h_k = np.zeros(tuple(parts["k"].shape))
        np.add.at(h_k, self._product_group.numpy(), h_v)
        curvature = np.concatenate([h_u.ravel(), h_c.ravel(), h_v.ravel(), h_k.ravel(),
                                    weight.sum(axis=0)])
        inverse = 1.0 / np.maximum(curvature, config.curvature_floor)
        return np.concatenate([inverse, np.zeros(len(LINK_START))])  # the link stays put


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def langevin(value_and_grad, x: np.ndarray, inverse_curvature: np.ndarray, step_size: float,
             steps: int, burn_in: int, rng: np.random.Generator, accumulate) -> int:
    """Preconditioned unadjusted Langevin from ``x``; ``accumulate(extra)`` gets what
    ``value_and_grad`` returned third for every state after the burn-in. Returns their count."""
    noise = np.sqrt(2.0 * step_size * inverse_curvature)
    kept = 0
    for step in range(steps):
        _, grad, extra = value_and_grad(x)
        if step >= burn_in:
            accumulate(extra)
            kept += 1
        x = x - step_size * inverse_curvature * np.asarray(grad) + noise * rng.standard_normal(
            x.size)
    return kept


def fit(rows: TrainRows, config: PosteriorFitConfig = PosteriorFitConfig()) -> PosteriorFit:
    """The start point's scores and the posterior predictive (see the module's docstring)."""
    from scipy.optimize import minimize

    posterior = _Posterior(rows, config)
    tf = posterior.tf
    rng = np.random.default_rng(config.seed)
    x = rng.normal(0.0, 0.1, posterior.size)
    x[-len(LINK_START):] = LINK_START

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad, _ = posterior.value_and_grad(tf.constant(flat))
        return float(value), grad.numpy()

    started = time.monotonic()
    x = minimize(objective, x, jac=True, method="L-BFGS-B",
                 options={"maxiter": config.map_iterations}).x
    start_seconds = time.monotonic() - started
    start_scores = posterior.scores(tf.constant(x)).numpy()

    started = time.monotonic()
    total = np.zeros_like(start_scores)

    def accumulate(probs) -> None:
        np.add(total, probs.numpy(), out=total)

    kept = langevin(lambda flat: posterior.value_and_grad(tf.constant(flat)), x,
                    posterior.inverse_curvature(x), config.step_size, config.steps,
                    config.burn_in, rng, accumulate)
    return PosteriorFit(
        start_scores=start_scores, predictive=total / max(kept, 1),
        link=tuple(round(float(v), 3) for v in x[-len(LINK_START):]), samples=kept,
        start_seconds=start_seconds, sample_seconds=time.monotonic() - started)
