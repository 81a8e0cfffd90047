"""The planted latent structure behind the synthetic interactions, and its persistence.

A buyer ``b`` chooses product ``p`` with probability ``softmax_p(affinity[b, p] / temperature)``
where ``affinity[b, p] = buyer_factors[b] . product_factors[p] + popularity_bias[p]``. With a
Zipf exponent ``s`` (``product_popularity_zipf``) the bias includes ``-s * temperature *
ln(rank[p])``, so the choice probability is multiplied by ``rank[p] ** -s``.
Everything needed to recompute that distribution is saved next to the data, so a trained
model can be compared with the ground truth it was supposed to recover.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from synthetic.config import SyntheticConfig

# Random streams are keyed by (seed, stream, ...) so that planting and row sampling never
# share draws: adding a draw to one cannot shift the other.
STREAM_PLANT = 0
STREAM_ROWS = 1
# The Zipf popularity ranks have a stream of their own, so that switching them on leaves
# every other planted draw, and so the data of a config without them, unchanged.
STREAM_POPULARITY = 2

# Share of a buyer factor's variance explained by the city centroid, and of a product
# factor's by its category centroid. These make city and category informative features
# without making them sufficient ones.
CITY_SHARE = 0.25
CATEGORY_SHARE = 0.64
# Standard deviation of buyer.product affinity before the popularity bias; with the default
# temperature this gives an oracle recall@10 of roughly 0.4-0.55 on a 200-product catalogue.
AFFINITY_SCALE = 1.5

_ARRAY_NAMES = (
    "buyer_factors",
    "product_factors",
    "popularity_bias",
    "temperature",
    "buyer_ids",
    "product_ids",
    "product_category",
    "buyer_city",
    "buyer_activity",
)


def _id_strings(prefix: str, count: int, min_width: int) -> np.ndarray:
    """Zero-padded ids; fixed width keeps them in lexicographic = numeric order."""
    width = max(min_width, len(str(count - 1)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(count)])


def _assign_groups(rng: np.random.Generator, items: int, groups: int, skew: float) -> np.ndarray:
    """Assign each item to a group with Zipf-like group sizes; no group is left empty."""
    weights = 1.0 / np.arange(1, groups + 1) ** skew
    extra = rng.choice(groups, size=items - groups, p=weights / weights.sum())
    assignment = np.concatenate([np.arange(groups), extra])
    rng.shuffle(assignment)
    return assignment


@dataclass(frozen=True)
class PlantedFactors:
    """Ground-truth factors of a synthetic data set (arrays indexed by buyer / product index)."""

    buyer_factors: np.ndarray
    """(buyers, latent_dim) float64 buyer factor vectors."""
    product_factors: np.ndarray
    """(products, latent_dim) float64 product factor vectors."""
    popularity_bias: np.ndarray
    """(products,) float64 additive popularity bias of each product."""
    temperature: float
    """Softmax temperature of the product choice."""
    buyer_ids: np.ndarray
    """(buyers,) str buyer ids as written to the data, sorted."""
    product_ids: np.ndarray
    """(products,) str product ids as written to the data, sorted."""
    product_category: np.ndarray
    """(products,) str category of each product."""
    buyer_city: np.ndarray
    """(buyers,) str city of each buyer."""
    buyer_activity: np.ndarray
    """(buyers,) float64 probability that a row belongs to each buyer."""

    @property
    def num_buyers(self) -> int:
        """Number of buyers."""
        return int(self.buyer_factors.shape[0])

    @property
    def num_products(self) -> int:
        """Number of products."""
        return int(self.product_factors.shape[0])

    def buyer_index(self, buyer_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Map buyer id strings to row indices of the buyer arrays; KeyError if unknown."""
        return _lookup(self.buyer_ids, buyer_ids, "buyer")

    def product_index(self, product_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Map product id strings to row indices of the product arrays; KeyError if unknown."""
        return _lookup(self.product_ids, product_ids, "product")

    def true_affinity(self, buyer_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Planted affinity of each given buyer to every product, shape (len(buyer_ids), products).

        Columns follow ``product_ids``. The result is dense, so callers with many buyers should
        pass them in batches (``oracle_recall_at_k`` does).
        """
        return self.affinity_by_index(self.buyer_index(buyer_ids))

    def affinity_by_index(self, buyer_index: np.ndarray) -> np.ndarray:
        """Like ``true_affinity`` but takes buyer row indices instead of id strings."""
        return self.buyer_factors[buyer_index] @ self.product_factors.T + self.popularity_bias

    def choice_probabilities(self, buyer_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Probability that each given buyer's next interaction is each product (rows sum to 1)."""
        logits = self.true_affinity(buyer_ids) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def affinity_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over products of each buyer's affinity.

        Computed in closed form from the product factors' mean and covariance, so it costs
        O(buyers * latent_dim^2) instead of O(buyers * products).
        """
        w = np.column_stack([self.product_factors, self.popularity_bias])
        x = np.column_stack([self.buyer_factors, np.ones(self.num_buyers)])
        mean = x @ w.mean(axis=0)
        cov = np.atleast_2d(np.cov(w, rowvar=False, bias=True))
        var = np.einsum("bi,ij,bj->b", x, cov, x)
        return mean, np.sqrt(np.maximum(var, 1e-12))


def _lookup(known: np.ndarray, wanted: Sequence[str] | np.ndarray, kind: str) -> np.ndarray:
    wanted = np.asarray(wanted)
    index = np.searchsorted(known, wanted)
    index = np.minimum(index, len(known) - 1)
    missing = known[index] != wanted
    if np.any(missing):
        examples = ", ".join(map(str, wanted[missing][:5]))
        raise KeyError(f"unknown {kind} id(s): {examples}")
    return index


def popularity_ranks(seed: int, products: int) -> np.ndarray:
    """Zipf popularity rank of each product (1 = most popular): a permutation drawn from seed."""
    rng = np.random.default_rng([seed, STREAM_POPULARITY])
    return rng.permutation(products) + 1


def plant_factors(config: SyntheticConfig) -> PlantedFactors:
    """Draw the latent structure of a data set from the config's seed (no row sampling)."""
    rng = np.random.default_rng([config.seed, STREAM_PLANT])
    d = config.latent_dim

    buyer_city = _assign_groups(rng, config.buyers, config.cities, skew=1.0)
    city_centroids = rng.standard_normal((config.cities, d))
    buyer_factors = np.sqrt(CITY_SHARE) * city_centroids[buyer_city] + np.sqrt(
        1.0 - CITY_SHARE
    ) * rng.standard_normal((config.buyers, d))

    product_category = _assign_groups(rng, config.products, config.categories, skew=0.5)
    category_centroids = rng.standard_normal((config.categories, d))
    product_factors = np.sqrt(CATEGORY_SHARE) * category_centroids[product_category] + np.sqrt(
        1.0 - CATEGORY_SHARE
    ) * rng.standard_normal((config.products, d))
    # Unit-variance buyer components times product components scaled by 1/sqrt(d) keep the
    # affinity spread independent of latent_dim.
    product_factors *= AFFINITY_SCALE / np.sqrt(d)

    popularity_bias = config.popularity_scale * rng.standard_normal(config.products)
    if config.product_popularity_zipf is not None:
        # Choice weight x rank^-s is choice logit - s * ln(rank), i.e. affinity / temperature
        # - s * ln(rank): as part of the bias the Zipf term is in every affinity, so sampling,
        # the oracle and the closed-form recall all see the one same distribution.
        ranks = popularity_ranks(config.seed, config.products)
        popularity_bias -= config.product_popularity_zipf * config.temperature * np.log(ranks)
    popularity_bias[product_category == 0] += config.category_boost  # after every draw
    activity = rng.lognormal(0.0, config.activity_sigma, config.buyers)

    city_names = _id_strings("city_", config.cities, 2)
    category_names = _id_strings("cat_", config.categories, 2)
    return PlantedFactors(
        buyer_factors=buyer_factors,
        product_factors=product_factors,
        popularity_bias=popularity_bias,
        temperature=float(config.temperature),
        buyer_ids=_id_strings("B", config.buyers, 6),
        product_ids=_id_strings("P", config.products, 6),
        product_category=category_names[product_category],
        buyer_city=city_names[buyer_city],
        buyer_activity=activity / activity.sum(),
    )


def save_planted(planted: PlantedFactors, path: Path) -> None:
    """Write the factors as an uncompressed .npz with fixed zip timestamps.

    ``np.savez`` stamps each member with the current time, which would make two identical
    runs produce different bytes; writing the zip ourselves keeps the file reproducible.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in _ARRAY_NAMES:
            buffer = io.BytesIO()
            array = np.asarray(getattr(planted, name))
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, buffer.getvalue())


def load_planted(path: str | Path) -> PlantedFactors:
    """Read factors written by ``generate`` (``<out_dir>/_planted/planted_factors.npz``)."""
    with np.load(Path(path), allow_pickle=False) as data:
        missing = [name for name in _ARRAY_NAMES if name not in data.files]
        if missing:
            raise ValueError(f"{path} is not a planted-factors file; missing arrays: {missing}")
        arrays = {name: data[name] for name in _ARRAY_NAMES}
    arrays["temperature"] = float(arrays["temperature"])
    return PlantedFactors(**arrays)
