"""run_executor hands beam_pipeline_args to Beam-based executors and writes fresh outputs."""

from __future__ import annotations

import json
from pathlib import Path

from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from retrain.adapters.tfx import run_executor


class RecordingBeamExecutor(base_beam_executor.BaseBeamExecutor):
    """Writes what it was given into its output artifact."""

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 - TFX's name
        out = artifact_utils.get_single_uri(output_dict["examples"])
        output_dict["examples"][0].split_names = '["train"]'
        Path(out, "seen.json").write_text(json.dumps({
            "beam_args": self._beam_pipeline_args,
            "inputs": sorted(input_dict),
            "props": exec_properties,
        }))


def test_beam_args_and_exec_properties_reach_the_executor(tmp_path):
    stale = tmp_path / "out" / "left-over.txt"
    stale.parent.mkdir()
    stale.write_text("from an earlier attempt")
    outputs = run_executor(
        f"{__name__}.RecordingBeamExecutor",
        inputs={"schema": None},
        outputs={"examples": "Examples"},
        exec_properties={"k": "v"},
        output_dir=str(tmp_path / "out"),
        # An explicit --extra_package keeps TFX from building its own sdist for workers.
        beam_args=["--direct_running_mode=in_memory", "--extra_package=/x.tar.gz"],
    )
    seen = json.loads(Path(outputs["examples"].uri, "seen.json").read_text())
    # TFX appends its own --labels after the args it was given.
    assert seen["beam_args"][:2] == ["--direct_running_mode=in_memory", "--extra_package=/x.tar.gz"]
    assert seen["inputs"] == [] and seen["props"] == {"k": "v"}
    assert outputs["examples"].split_names == ["train"]
    assert outputs["examples"].uri == str(tmp_path / "out" / "examples")
    assert not stale.exists()  # the output dir is emptied before a run
