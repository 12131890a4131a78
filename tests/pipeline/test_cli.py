"""The ``donorsite`` command line: every command (and sub-command) answers ``--help``."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli import app


def _command_paths(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``group``, sub-groups included (recursively).

    Typer bundles its own copy of Click, so groups are recognised by their ``commands``.
    """
    paths = [prefix]
    commands = getattr(group, "commands", None)
    if isinstance(commands, dict):
        for name, command in sorted(commands.items()):
            paths += _command_paths(command, (*prefix, name))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def test_commands_are_registered():
    assert ("synth",) in COMMANDS and ("run",) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "donorsite")
def test_help_exits_zero(path):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_synth_command_makes_a_study_and_refuses_to_overwrite_it(tmp_path):
    out = tmp_path / "study"
    args = ["synth", str(out), "--seed", "3", "--subjects", "2", "--days", "0",
            "--size", "96x72", "--jobs", "1"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert (out / "manifest.csv").is_file() and "2 photos" in first.output
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 2 and str(out) in second.output
    bad = CliRunner().invoke(app, [*args[:-4], "--size", "big", "--force"])
    assert bad.exit_code == 2 and "big" in bad.output


def test_process_help_names_the_ray_extra_and_backends():
    out = CliRunner().invoke(app, ["process", "--help"], terminal_width=200).output
    assert "donorsite[ray]" in out  # not swallowed as rich markup
    assert "onnxruntime" in out


def test_process_refuses_an_unknown_backend(small_study, tmp_path):
    res = CliRunner().invoke(app, ["process", str(small_study), "--out", str(tmp_path / "o"),
                                   "--backend", "tensorrt", "--no-progress"])
    assert res.exit_code == 2
    assert "tensorrt" in res.output and "onnxruntime" in res.output
    assert not (tmp_path / "o" / "study.sqlite").exists()


def test_process_records_the_decoding_and_backend_it_was_asked_for(small_study, tiny_model,
                                                                   tmp_path):
    import json
    import sqlite3

    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["process", str(small_study), "--out", str(out), "--model",
                                   str(tiny_model), "--jobs", "1", "--backend", "torch",
                                   "--reduced-decode", "--no-progress"])
    assert res.exit_code == 0, res.output
    with sqlite3.connect(out / "study.sqlite") as con:
        params = json.loads(con.execute("SELECT params_json FROM runs").fetchone()[0])
    assert params["decode"]["reduce"] == "auto"
    assert params["network"]["backend"] == "torch"
