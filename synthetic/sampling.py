"""Row sampling from planted factors, one fixed-size chunk at a time.

Product choice uses per-buyer CDFs built on the fly for the buyers present in a chunk:

1. draw the chunk's buyers from the activity distribution (inverse CDF of a uniform);
2. group the chunk's rows by buyer; for the distinct buyers, in batches of at most
   ``CDF_BUDGET // products`` buyers, compute ``softmax(affinity / temperature)`` (a
   ``batch x products`` block, never more than ``CDF_BUDGET`` floats) and take one
   cumulative sum over the flattened block, so row ``i`` of it runs from ``i`` to ``i + 1``;
3. invert each row's uniform draw ``u`` with one ``searchsorted`` of ``u + i`` (``i`` = the
   row's buyer within the batch) over that flat array.

This is exact sampling. Memory is ``O(chunk_rows + CDF_BUDGET + (buyers + products) * dim)``,
flat in the number of rows; no ``buyers x products`` matrix ever exists. Time per chunk is
``O(distinct buyers in chunk * products)``, so for large catalogues a larger ``chunk_rows``
amortises each CDF over more rows. Gumbel-max was the alternative; it needs ``products``
noise draws per row, i.e. far more work whenever buyers repeat within a chunk, and it is no
cheaper when they do not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synthetic.config import SyntheticConfig
from synthetic.planted import STREAM_ROWS, PlantedFactors

# Floats per CDF block: 2M float64 = 16 MiB, plus one temporary of the same size.
CDF_BUDGET = 2_000_000
# Bounding the block's row count keeps the "+row" shift small, so float64 resolution of
# the shifted CDF stays near 1e-11.
MAX_CDF_ROWS = 65_536
# Rows per slice when gathering factor vectors for the chosen (buyer, product) pairs.
PAIR_SLICE_ROWS = 65_536

# Quantity is 1 + Poisson(exp(QUANTITY_BASE + QUANTITY_SLOPE * z)) and rating is
# clip(RATING_CENTER + RATING_SLOPE * z + N(0, RATING_NOISE), 1, 5), where z is the
# affinity of the chosen product standardised over the buyer's whole catalogue: buyers
# order more of, and rate higher, what they like more than their average product.
QUANTITY_BASE = 0.3
QUANTITY_SLOPE = 0.5
QUANTITY_MAX_MEAN = 50.0
RATING_CENTER = 3.0
RATING_SLOPE = 0.8
RATING_NOISE = 0.5

SCHEMA = pa.schema(
    [
        pa.field("buyer_id", pa.string(), nullable=False),
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("city", pa.string(), nullable=False),
        pa.field("timestamp", pa.int64(), nullable=False),
        pa.field("quantity", pa.int64(), nullable=False),
        pa.field("rating", pa.float64(), nullable=False),
    ]
)
COLUMNS = tuple(SCHEMA.names)
STRING_COLUMNS = ("buyer_id", "product_id", "category", "city")


def sample_products(
    planted: PlantedFactors,
    buyer_index: np.ndarray,
    uniforms: np.ndarray,
    cdf_budget: int = CDF_BUDGET,
) -> np.ndarray:
    """Product index for each row, drawn from its buyer's softmax(affinity / temperature).

    ``uniforms`` holds one U[0, 1) draw per row; the result is a deterministic function of
    the inputs. ``cdf_budget`` only changes cost: results agree across budgets except where
    float rounding moves a CDF edge past a draw (about 1e-11 of the probability mass).
    """
    n_products = planted.num_products
    unique, inverse = np.unique(buyer_index, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    sorted_inverse = inverse[order]
    batch = max(1, min(cdf_budget // n_products, MAX_CDF_ROWS))
    # Folding 1/temperature into the (small) product side saves a pass over every block.
    inv_temperature = 1.0 / planted.temperature
    scaled_products = np.ascontiguousarray((planted.product_factors * inv_temperature).T)
    scaled_bias = planted.popularity_bias * inv_temperature
    products = np.empty(len(buyer_index), dtype=np.int64)
    for start in range(0, len(unique), batch):
        stop = min(start + batch, len(unique))
        block = planted.buyer_factors[unique[start:stop]] @ scaled_products
        block += scaled_bias
        block -= block.max(axis=1, keepdims=True)
        np.exp(block, out=block)
        block /= block.sum(axis=1, keepdims=True)
        # One cumulative sum over the flattened block: row i of the result runs from i to
        # i + 1, which is the shifted CDF the single searchsorted below needs.
        flat = block.ravel()
        np.cumsum(flat, out=flat)
        lo, hi = np.searchsorted(sorted_inverse, [start, stop])
        rows = order[lo:hi]
        local = sorted_inverse[lo:hi] - start
        flat_pos = np.searchsorted(flat, uniforms[rows] + local, side="right")
        # Rounding can put a draw a hair across its row's edge; the edge product is right.
        products[rows] = np.clip(flat_pos - local * n_products, 0, n_products - 1)
    return products


def pair_affinity(
    planted: PlantedFactors, buyer_index: np.ndarray, product_index: np.ndarray
) -> np.ndarray:
    """Affinity of each (buyer, product) row, in slices so the factor gathers stay small."""
    affinity = np.empty(len(buyer_index), dtype=np.float64)
    for start in range(0, len(buyer_index), PAIR_SLICE_ROWS):
        stop = start + PAIR_SLICE_ROWS
        buyers, products = buyer_index[start:stop], product_index[start:stop]
        affinity[start:stop] = np.einsum(
            "nd,nd->n", planted.buyer_factors[buyers], planted.product_factors[products]
        )
        affinity[start:stop] += planted.popularity_bias[products]
    return affinity


class Vocabulary:
    """Id strings of buyers, products, categories and cities, looked up by buyer/product index.

    Held twice: as Arrow arrays for Parquet (taken in C++) and as numpy object arrays of
    Python str for the row-wise CSV and TFRecord writers (taken without per-row Python work).
    """

    def __init__(self, planted: PlantedFactors) -> None:
        by_buyer = {"buyer_id": planted.buyer_ids, "city": planted.buyer_city}
        by_product = {"product_id": planted.product_ids, "category": planted.product_category}
        self.by_buyer = {name: _lookup_pair(values) for name, values in by_buyer.items()}
        self.by_product = {name: _lookup_pair(values) for name, values in by_product.items()}


def _lookup_pair(values: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    return string_array(values), np.array(values.tolist(), dtype=object)


@dataclass(frozen=True)
class Chunk:
    """A block of sampled rows: buyer and product indices plus the numeric columns."""

    buyer_index: np.ndarray
    product_index: np.ndarray
    timestamp: np.ndarray
    quantity: np.ndarray
    rating: np.ndarray
    vocabulary: Vocabulary

    @property
    def num_rows(self) -> int:
        """Number of rows in the chunk."""
        return len(self.buyer_index)

    def slice(self, start: int, stop: int) -> "Chunk":
        """Rows ``start:stop`` as a new chunk (numpy views, no copy)."""
        return dataclasses.replace(
            self,
            buyer_index=self.buyer_index[start:stop],
            product_index=self.product_index[start:stop],
            timestamp=self.timestamp[start:stop],
            quantity=self.quantity[start:stop],
            rating=self.rating[start:stop],
        )

    def _index_for(self, name: str) -> tuple[np.ndarray, tuple[pa.Array, np.ndarray]]:
        if name in self.vocabulary.by_buyer:
            return self.buyer_index, self.vocabulary.by_buyer[name]
        return self.product_index, self.vocabulary.by_product[name]

    def to_arrow(self) -> pa.Table:
        """The rows as an Arrow table with ``SCHEMA``."""
        arrays = []
        for name in STRING_COLUMNS:
            index, (arrow_values, _) = self._index_for(name)
            # pc.take, not Array.take: the method imports pandas on first use.
            arrays.append(pc.take(arrow_values, numeric_array(index, pa.int64())))
        arrays.append(numeric_array(self.timestamp, pa.int64()))
        arrays.append(numeric_array(self.quantity, pa.int64()))
        arrays.append(numeric_array(self.rating, pa.float64()))
        return pa.Table.from_arrays(arrays, schema=SCHEMA)

    def to_pylists(self) -> list[list]:
        """The columns, in ``COLUMNS`` order, as lists of Python str / int / float."""
        columns = []
        for name in STRING_COLUMNS:
            index, (_, objects) = self._index_for(name)
            columns.append(objects[index].tolist())
        columns.extend([self.timestamp.tolist(), self.quantity.tolist(), self.rating.tolist()])
        return columns


class ChunkSampler:
    """Turns planted factors into row chunks; chunk ``i`` depends only on (config, i)."""

    def __init__(self, config: SyntheticConfig, planted: PlantedFactors) -> None:
        self._config = config
        self._planted = planted
        self._activity_cdf = np.cumsum(planted.buyer_activity)
        self._activity_cdf /= self._activity_cdf[-1]
        self._affinity_mean, self._affinity_std = planted.affinity_moments()
        self._vocabulary = Vocabulary(planted)

    @property
    def num_chunks(self) -> int:
        """Number of chunks needed for ``config.rows`` rows."""
        return -(-self._config.rows // self._config.chunk_rows)

    def chunk(self, chunk_index: int) -> Chunk:
        """Sample chunk ``chunk_index`` (the last one holds the remainder)."""
        config, planted = self._config, self._planted
        start = chunk_index * config.chunk_rows
        n = min(config.chunk_rows, config.rows - start)
        if chunk_index < 0 or n <= 0:
            raise IndexError(f"chunk {chunk_index} is out of range ({self.num_chunks} chunks)")
        # One generator per variable: each column's draws are then a prefix-stable stream,
        # so a shorter last chunk holds exactly the first rows of a full one.
        seeds = np.random.SeedSequence([config.seed, STREAM_ROWS, chunk_index]).spawn(5)
        buyer_rng, product_rng, time_rng, rating_rng, quantity_rng = map(
            np.random.default_rng, seeds
        )
        buyer_uniforms = buyer_rng.random(n)
        product_uniforms = product_rng.random(n)
        offsets = time_rng.integers(0, config.days * 86_400, size=n, dtype=np.int64)
        rating_noise = rating_rng.normal(0.0, RATING_NOISE, size=n)

        buyers = np.searchsorted(self._activity_cdf, buyer_uniforms, side="right")
        buyers = np.minimum(buyers, planted.num_buyers - 1)
        products = sample_products(planted, buyers, product_uniforms)

        affinity = pair_affinity(planted, buyers, products)
        z = (affinity - self._affinity_mean[buyers]) / self._affinity_std[buyers]
        mean_extra = np.minimum(np.exp(QUANTITY_BASE + QUANTITY_SLOPE * z), QUANTITY_MAX_MEAN)
        quantity = 1 + quantity_rng.poisson(mean_extra).astype(np.int64)
        if config.quantity_scale != 1.0:
            quantity = np.maximum(1, np.rint(quantity * config.quantity_scale)).astype(np.int64)
        rating = np.round(np.clip(RATING_CENTER + RATING_SLOPE * z + rating_noise, 1.0, 5.0), 1)
        return Chunk(
            buyer_index=buyers,
            product_index=products,
            timestamp=config.start_timestamp + offsets,
            quantity=quantity,
            rating=rating,
            vocabulary=self._vocabulary,
        )

    def __iter__(self) -> Iterator[Chunk]:
        for chunk_index in range(self.num_chunks):
            yield self.chunk(chunk_index)


# pa.array() imports pandas whenever it is installed (over a second on a small machine), so
# arrays are assembled from their buffers instead.
_NUMPY_DTYPES = {pa.int64(): np.int64, pa.float64(): np.float64}


def numeric_array(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """Zero-copy Arrow array (no nulls) over a numpy array; int64 and float64 only."""
    values = np.ascontiguousarray(values, dtype=_NUMPY_DTYPES[arrow_type])
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])


def string_array(values: np.ndarray) -> pa.Array:
    """Arrow string array (no nulls) from a numpy array of str."""
    encoded = [str(value).encode("utf-8") for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(item) for item in encoded], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )
