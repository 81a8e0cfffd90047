"""What serves: the operations on a registered model's serving state, its champion history,
and the version policy TF Serving applies to a model directory.

Seed 003's Deployment section (Push to Registry, Deploy, Undeploy, the deployed flag and
timestamp) on TF Serving's layout: `<serving_base>/<model>/<version>/` SavedModel
directories, where `<version>` is the Pusher's unix-seconds stamp, and a `models.config`
beside them that names the one version to serve (a `specific` version policy), or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum

from pydantic import BaseModel, Field

CONFIG_FILE = "models.config"


class ModelAction(str, Enum):
    """A change of what serves for a model name."""

    PUSHED = "pushed"  # a blessed run's model was published and became the champion
    DEPLOYED = "deployed"  # a registered version was made the champion and served
    UNDEPLOYED = "undeployed"  # nothing serves any more; the champion stays the baseline
    ROLLED_BACK = "rolled_back"  # the previous champion again

    @property
    def event(self) -> str:
        """The Prefect event announcing it."""
        return f"retrain.model.{self.value.replace('_', '-')}"


class ChampionStep(BaseModel):
    """One recorded change, as far as the champion history needs it."""

    action: ModelAction = Field(description="What was done.")
    version: str | None = Field(description="Registered version serving after it (None: none).")
    previous_version: str | None = Field(
        description="The champion before it (None: there was none).")


def previous_champions(steps: Iterable[ChampionStep]) -> list[str]:
    """The champions a rollback can return to, oldest first (the last one is next).

    A push or deploy that replaces the champion stacks the one it replaced; a rollback
    takes the top one off; an undeploy changes what serves, not who is champion.
    """
    stack: list[str] = []
    for step in steps:
        if step.action in (ModelAction.PUSHED, ModelAction.DEPLOYED):
            if step.previous_version and step.previous_version != step.version:
                stack.append(step.previous_version)
        elif step.action == ModelAction.ROLLED_BACK and stack:
            stack.pop()
    return stack


def rollback_target(steps: Sequence[ChampionStep], registered: Iterable[str]) -> str | None:
    """The version a rollback makes champion: the newest earlier champion still registered
    (a version deleted since is passed over), or None when there is none."""
    still = set(registered)
    for version in reversed(previous_champions(steps)):
        if version in still:
            return version
    return None


class VersionPolicy(str, Enum):
    """TF Serving's `model_version_policy` choices (ServableVersionPolicy)."""

    LATEST = "latest"
    SPECIFIC = "specific"
    ALL = "all"


class ServedModel(BaseModel):
    """One entry of a `model_config_list`: where a model's versions are and which serve."""

    name: str = Field(description="The model name TF Serving serves it under.")
    base_path: str = Field(description="Directory holding the numbered version directories.")
    policy: VersionPolicy = Field(default=VersionPolicy.LATEST,
                                  description="How TF Serving picks versions.")
    versions: list[int] = Field(default_factory=list,
                                description="The versions a `specific` policy names.")
    num_versions: int = Field(default=1, ge=1, description="How many a `latest` policy keeps.")


def numeric_versions(names: Iterable[str]) -> list[int]:
    """The entries TF Serving takes for versions: names that are whole non-negative
    numbers (anything else beside them, `models.config` included, is ignored)."""
    return sorted(int(name) for name in names if name.isdigit())


def selected_versions(entry: ServedModel | None, on_disk: Iterable[int]) -> list[int]:
    """The versions TF Serving loads for `entry` from the version directories on disk.

    No entry (the config lists nothing for the model) loads nothing. `latest` loads the
    `num_versions` highest, `all` every one, `specific` those it names that exist.
    """
    if entry is None:
        return []
    available = sorted(set(on_disk))
    if entry.policy == VersionPolicy.ALL:
        return available
    if entry.policy == VersionPolicy.SPECIFIC:
        return [version for version in available if version in set(entry.versions)]
    return available[-entry.num_versions:]
