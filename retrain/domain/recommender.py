"""ModelConfig, TrainingParams and GpuConfig: a TFRS model and how to train it, as data.

The library `run_fn` (`tasks.trainer.run_fn`) builds the towers and the TFRS model
from these with ordinary code; nothing is generated as text.
"""

from __future__ import annotations

from enum import Enum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from retrain.domain.features import FeatureConfig

# What `model.type` accepts (a Literal keeps the Prefect form's inline choice list).
RecommenderType = Literal["retrieval", "ranking", "multitask"]


class ModelType(str, Enum):
    """A registered model's type: a recommender built from config, or a TFX user module."""

    RETRIEVAL = "retrieval"
    RANKING = "ranking"
    MULTITASK = "multitask"
    USER_MODULE = "user_module"
RECALL_KS = (5, 10, 50, 100)


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerConfig(_Config):
    """One dense layer of a tower or of the ranking head."""

    units: int = Field(gt=0, description="Dense units.")
    activation: Literal["relu", "gelu", "swish", "tanh", "sigmoid", "linear"] = Field(
        default="relu", description="Activation after the dense layer."
    )
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="Dropout rate after it.")
    batch_norm: bool = Field(default=False, description="Batch normalisation before activation.")


class OptimizerConfig(_Config):
    """Optimizer; the learning rate is a training parameter (TrainingParams.learning_rate)."""

    name: Literal["adagrad", "adam", "sgd"] = Field(default="adagrad", description="Optimizer.")
    clipnorm: float | None = Field(
        default=None, gt=0.0, description="Clip each gradient to this norm; None for no clipping."
    )


class FitMethod(str, Enum):
    """How a retrieval model's weights are found."""

    SGD = "sgd"
    POSTERIOR = "posterior"


class PosteriorConfig(_Config):
    """The posterior fit (`model.fit: posterior`): a Bayesian factor model sampled by
    Langevin dynamics, served as the average over its samples.

    score(query, candidate) = query · candidate + bias, each side the sum of its columns'
    embeddings (`latent` wide), over the whole candidate corpus; `features.feedback`
    ratings and counts are read on the row's score standardised over the corpus.
    """

    latent: int = Field(default=8, ge=1, le=256, description="Width of each sample's embeddings.")
    id_l2: float = Field(
        default=1.0, gt=0.0, description="Prior precision of the query's and the candidate's "
        "id embeddings (the first categorical feature of each tower).")
    shared_l2: float = Field(
        default=1e-3, gt=0.0, description="Prior precision of every other column's embeddings "
        "(city, category …), which many rows share.")
    warm_start_iterations: int = Field(
        default=500, ge=1, le=100_000,
        description="L-BFGS iterations towards the posterior's mode before sampling starts.")
    steps: int = Field(default=2_500, ge=2, le=1_000_000, description="Langevin steps.")
    burn_in: int = Field(default=500, ge=0, description="First steps not kept.")
    samples: int = Field(
        default=50, ge=1, le=500,
        description="Samples the served model averages, evenly spaced over the kept steps.")
    step_size: float = Field(default=0.05, gt=0.0, le=1.0, description="Langevin step size "
                             "(in units of each parameter's posterior variance).")
    curvature_floor: float = Field(
        default=20.0, gt=0.0, description="Smallest curvature the preconditioner assumes: "
        "caps the step of parameters the data hardly constrain.")
    records: int = Field(
        default=10, ge=1, le=1000,
        description="Training records (UI progress, validation recall) over the steps.")
    max_cells: int = Field(
        default=25_000_000, ge=1,
        description="Most distinct queries × candidates the fit holds at once (float64 "
        "scores: 8 bytes each, a few copies).")

    @model_validator(mode="after")
    def _check_steps(self) -> PosteriorConfig:
        if self.burn_in >= self.steps:
            raise ValueError(f"model.posterior: burn_in {self.burn_in} leaves none of the "
                             f"{self.steps} steps to keep")
        if self.samples > self.steps - self.burn_in:
            raise ValueError(f"model.posterior: {self.samples} samples from "
                             f"{self.steps - self.burn_in} kept steps")
        return self


class ModelConfig(_Config):
    """A TensorFlow Recommenders model: retrieval (two towers), ranking or both."""

    type: RecommenderType = Field(
        description="`retrieval`: two towers, in-batch softmax; `ranking`: a rating "
        "regression head on the tower outputs; `multitask`: both, with loss weights."
    )
    query_tower: list[LayerConfig] = Field(
        default_factory=list,
        description="Hidden layers of the query (buyer) tower, input to output. None (the "
        "default): the tower is a linear map of its embeddings, the matrix-factorisation "
        "form; add layers for features that interact.",
    )
    candidate_tower: list[LayerConfig] = Field(
        default_factory=list,
        description="Hidden layers of the candidate (product) tower; none by default.",
    )
    output_dim: int = Field(default=32, gt=0, description="Width of both towers' output embedding.")
    ranking_head: list[LayerConfig] = Field(
        default_factory=lambda: [LayerConfig(units=64), LayerConfig(units=32)],
        description="Hidden layers of the rating head over [query, candidate] embeddings.",
    )
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="Optimizer.")
    sampled_negatives: int = Field(
        default=0,
        ge=0,
        description="Extra negatives per batch drawn uniformly from the candidate corpus, on "
        "top of the in-batch negatives (retrieval).",
    )
    logq_correction: bool = Field(
        default=False,
        description="Subtract log(sampling probability) from in-batch logits so popular "
        "candidates are not over-penalised (retrieval).",
    )
    embedding_l2: float = Field(
        default=0.01,
        ge=0.0,
        description="Penalty on the squared length of each training example's query and "
        "candidate embeddings (the towers' outputs), added to the retrieval loss: shrinks "
        "buyers and products with few rows (retrieval and multitask; a ranking model has no "
        "use for it).",
    )
    fit: FitMethod = Field(
        default=FitMethod.SGD,
        description="`sgd`: Keras training over epochs (every model type); `posterior`: "
        "sample a Bayesian factor model of the whole train split (retrieval with linear "
        "towers; reads features.feedback), see `posterior`.",
    )
    posterior: PosteriorConfig = Field(
        default_factory=PosteriorConfig, description="The posterior fit's model and sampler.")
    retrieval_weight: float = Field(default=1.0, ge=0.0, description="Retrieval loss weight (multitask).")
    ranking_weight: float = Field(default=1.0, ge=0.0, description="Ranking loss weight (multitask).")
    top_k: int = Field(
        default=100, ge=1, le=10_000, description="Candidates the serving model returns per query."
    )

    @model_validator(mode="after")
    def _check_weights(self) -> ModelConfig:
        if self.type == "multitask" and self.retrieval_weight + self.ranking_weight == 0:
            raise ValueError("model: multitask needs retrieval_weight or ranking_weight > 0")
        if self.type == "ranking" and (self.sampled_negatives or self.logq_correction):
            raise ValueError(
                "model.sampled_negatives / model.logq_correction: retrieval options, not for "
                "a ranking model"
            )
        if self.fit == FitMethod.POSTERIOR:
            if self.type != "retrieval":
                raise ValueError(f"model.fit: posterior fits a retrieval model, not {self.type}")
            if self.query_tower or self.candidate_tower:
                raise ValueError("model.fit: posterior needs linear towers (no query_tower or "
                                 "candidate_tower layers)")
        return self

    @property
    def has_retrieval(self) -> bool:
        """Whether the model has a retrieval task (and a candidate index)."""
        return self.type in ("retrieval", "multitask")

    @property
    def has_ranking(self) -> bool:
        """Whether the model predicts the ranking target."""
        return self.type in ("ranking", "multitask")

    def best_epoch_metric(self) -> str:
        """The per-epoch validation metric that picks the best epoch by default:
        recall@100 over the corpus for a model that retrieves, RMSE for a ranking model."""
        return "val_recall_at_100" if self.has_retrieval else "val_rmse"

    def metric_names(self) -> list[str]:
        """Evaluator metrics of this model type."""
        names = ["example_count"]
        if self.has_retrieval:
            names += [f"recall_at_{k}" for k in RECALL_KS]
        if self.has_ranking:
            names += ["rmse", "mae"]
        return names


class EarlyStoppingConfig(_Config):
    """Keras EarlyStopping on a validation metric."""

    enabled: bool = Field(default=False, description="Stop when the monitored metric stalls.")
    patience: int = Field(default=3, ge=1, description="Epochs without improvement before stopping.")
    monitor: str = Field(
        default="val_loss",
        description="Per-epoch metric to watch, e.g. val_loss, val_recall_at_100, val_rmse.",
    )
    min_delta: float = Field(default=0.0, ge=0.0, description="Smallest change that counts.")
    restore_best_weights: bool = Field(
        default=True, description="Export the best epoch's weights, not the last epoch's."
    )


class TrainingParams(_Config):
    """How the model is trained (seed 003's training_params)."""

    epochs: int = Field(default=5, ge=1, le=1000, description="Passes over the train split.")
    batch_size: int = Field(default=1024, ge=8, le=1_048_576, description="Global batch size.")
    learning_rate: float = Field(default=0.1, gt=0.0, le=100.0, description="Optimizer learning rate.")
    early_stopping: EarlyStoppingConfig = Field(
        default_factory=EarlyStoppingConfig, description="Early stopping."
    )
    seed: int | None = Field(
        default=0, ge=0, description="Seed for weights, shuffling and dropout; None: unseeded."
    )
    shuffle_buffer: int = Field(
        default=10_000, ge=0, description="Shuffle buffer of the train split (0: no shuffle)."
    )
    epoch_eval_rows: int = Field(
        default=5_000,
        ge=0,
        description="Eval rows for the per-epoch validation metrics (recall@K over the "
        "corpus, loss); 0 turns per-epoch validation off. The Evaluator uses all rows.",
    )
    keep_best_epoch: bool = Field(
        default=True,
        description="Export the weights of the epoch with the best `best_epoch_metric`, not "
        "the last epoch's (needs per-epoch validation: epoch_eval_rows > 0). The model's "
        "recommender.json, the run summary and the record name the epoch kept.",
    )
    best_epoch_metric: str | None = Field(
        default=None,
        description="Per-epoch validation metric that picks the epoch kept, e.g. "
        "val_recall_at_100, val_rmse, val_loss; default val_recall_at_100 for retrieval and "
        "multitask, val_rmse for ranking. Errors and losses are better lower.",
    )


class GpuOption(_Config):
    """One GPU shape the Trainer's pod may ask for: accelerator type and count."""

    type: str | None = Field(
        default=None, description="Accelerator type, e.g. nvidia-tesla-t4 (node selector); "
        "empty for any GPU node."
    )
    count: int = Field(default=1, ge=1, le=16, description="GPUs in the pod.")

    def label(self) -> str:
        """'4×nvidia-tesla-t4' (for logs and attempt records)."""
        return f"{self.count}×{self.type or 'any GPU'}"


class GpuConfig(_Config):
    """GPUs for the Trainer. Requested GPUs must be visible, or the Trainer fails.

    With `deployment` set, the Trainer runs as a flow run of that deployment (the
    `gpu-trainer` flow on the Kubernetes work pool) instead of in the pipeline's process:
    `type`/`count` are tried first, then each `fallback` option whose predecessor's pod
    stayed unschedulable for `unschedulable_wait_seconds`. An evicted, preempted or crashed
    pod is resubmitted from the last finished epoch, at most `infrastructure_retries` times;
    an error in the training code is never retried.
    """

    enabled: bool = Field(default=False, description="Train on GPUs.")
    count: int = Field(
        default=1, ge=1, le=16, description="GPUs to use; more than one → MirroredStrategy."
    )
    type: str | None = Field(
        default=None, description="Accelerator type, e.g. nvidia-tesla-t4 (for the work pool)."
    )
    preemptible: bool = Field(
        default=False, description="Spot/preemptible nodes: cheaper, may be interrupted."
    )
    machine_type: str | None = Field(
        default=None, description="Machine type of the trainer node, e.g. n1-standard-16 "
        "(cost estimates)."
    )
    deployment: str | None = Field(
        default=None, pattern=r"^[^/\s]+/[^/\s]+$",
        description="Run the Trainer as a flow run of this deployment, e.g. "
        "gpu-trainer/kubernetes (prefect.yaml); empty: in the pipeline's own process.",
    )
    fallback: list[GpuOption] = Field(
        default_factory=list, max_length=8,
        description="GPU options tried in order after type/count when a pod cannot be "
        "scheduled, e.g. [{type: nvidia-tesla-v100, count: 4}, {type: nvidia-l4, count: 4}].",
    )
    unschedulable_wait_seconds: int = Field(
        default=600, ge=0, le=86400,
        description="How long a Trainer pod may stay unschedulable (or unclaimed by a worker) "
        "before its option is given up for the next one.",
    )
    infrastructure_retries: int = Field(
        default=3, ge=0, le=20,
        description="Resubmissions after an evicted, preempted or crashed Trainer pod (each "
        "resumes from the last finished epoch). Errors in training code are not retried.",
    )

    # Where and how the Trainer is scheduled, not what it computes: not in its cache key.
    ORCHESTRATION_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"deployment", "fallback", "unschedulable_wait_seconds", "infrastructure_retries"}
    )

    @model_validator(mode="after")
    def _check_fallback(self) -> GpuConfig:
        if self.fallback and not self.enabled:
            raise ValueError("fallback: GPU options need gpu.enabled: true")
        if self.fallback and not self.deployment:
            raise ValueError(
                "fallback: GPU options apply to a trainer deployment; set gpu.deployment "
                "(e.g. gpu-trainer/kubernetes)"
            )
        return self

    @property
    def options(self) -> list[GpuOption]:
        """Every GPU option in the order they are tried: type/count first."""
        return [GpuOption(type=self.type, count=self.count), *self.fallback]

    def with_option(self, option: GpuOption) -> GpuConfig:
        """This config for one attempt: `option`'s type and count, no further fallback."""
        return self.model_copy(update={"type": option.type, "count": option.count,
                                       "fallback": []})


class RecommenderSpec(_Config):
    """Everything the library run_fn needs: handed over as the Trainer's custom_config."""

    features: FeatureConfig = Field(description="Feature config.")
    model: ModelConfig = Field(description="Model config.")
    training: TrainingParams = Field(description="Training parameters.")
    gpu: GpuConfig = Field(description="GPU config.")
    checkpoint_dir: str | None = Field(
        default=None,
        description="Checkpoint every epoch here and resume from the last checkpoint found "
        "(set by the platform for a Trainer pod that may be preempted; not a cache input).",
    )
    raw_examples: bool = Field(
        default=False,
        description="The Trainer's examples are raw (Transform materialized nothing): run_fn "
        "applies the transform graph in its input pipeline (set by the platform).",
    )
