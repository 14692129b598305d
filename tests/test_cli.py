"""The latent-transforms command: init, info (text, JSON, sample grid), errors, help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from latent_transforms.cli import main

SMALL = [
    "--resolution",
    "16",
    "--z-dim",
    "16",
    "--w-dim",
    "16",
    "--channel-base",
    "256",
    "--channel-max",
    "32",
    "--w-stats-samples",
    "64",
]


def test_init_then_info_prints_the_card_and_draws_samples(tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["init", str(out), *SMALL, "--modalities", "mri,ct,mask", "--window", "mask=0,1"]) == 0
    assert main(["info", str(out), "--samples", str(tmp_path / "grid.png"), "--n", "5"]) == 0
    text = capsys.readouterr().out
    assert (
        "16 x 16" in text and "ct       window [-1000, 2000] HU" in text and "mask     window [0, 1]" in text
    )
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (5 * 18 + 2, 3 * 18 + 2)  # 5 samples across, 3 modalities down, 2 px padding


def test_info_json(tmp_path, capsys):
    main(["init", str(tmp_path), *SMALL])
    capsys.readouterr()
    assert main(["info", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["resolution"] == 16 and [m["name"] for m in summary["modalities"]] == ["mri", "ct"]
    assert len(summary["fingerprint"]) == 64


def test_library_errors_exit_2_with_the_message(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == 2
    assert "not an existing folder" in capsys.readouterr().err


def test_bad_window_syntax_is_explained(tmp_path):
    with pytest.raises(SystemExit, match="NAME=LOW,HIGH"):
        main(["init", str(tmp_path), *SMALL, "--window", "ct:0-1"])


def test_console_script_help_documents_convert():
    out = subprocess.run(
        [sys.executable, "-m", "latent_transforms.cli", "convert", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "network-snapshot" in out and "never runs" in out and "--modalities" in out


def _subparsers(parser):
    import argparse

    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_has_help_and_shares_the_common_flags(capsys):
    from latent_transforms.cli import build_parser

    commands = _subparsers(build_parser())
    assert list(commands) == [
        "demo",
        "info",
        "init",
        "convert",
        "train",
        "train-diffusion",
        "train-translation",
        "train-encoder",
        "invert",
        "augment",
        "evaluate",
        "tune",
    ]
    helps = {}
    for name, parser in commands.items():
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(["--help"])
        assert exit_info.value.code == 0
        helps[name] = {a.dest: a for a in parser._actions}
    capsys.readouterr()
    for flag, users in {
        "device": [
            "demo",
            "train",
            "train-diffusion",
            "train-translation",
            "train-encoder",
            "invert",
            "augment",
            "evaluate",
            "tune",
        ],
        "revision": ["info", "train-encoder", "invert", "augment", "evaluate"],
        "cache_dir": ["info", "train-encoder", "invert", "augment", "evaluate"],
        "quiet": [
            "demo",
            "train-diffusion",
            "train-translation",
            "train-encoder",
            "invert",
            "augment",
            "evaluate",
            "tune",
        ],
    }.items():
        actions = [helps[name][flag] for name in users]
        assert all(a.default == actions[0].default and a.help == actions[0].help for a in actions), flag
        assert [name for name in helps if flag in helps[name]] == users, flag


def test_top_level_help_and_version():
    run = subprocess.run(
        [sys.executable, "-m", "latent_transforms.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in run.stdout and "augment" in run.stdout and "tune" in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "latent_transforms.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.startswith("latent-transforms ")


def test_no_library_module_imports_the_cli():
    import ast
    from pathlib import Path

    import latent_transforms

    root = Path(latent_transforms.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "cli.py" and path.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            if any(n == "latent_transforms.cli" for n in names):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []


def test_library_progress_is_logged_to_stderr_unless_quiet(capsys):
    import logging

    from latent_transforms.cli import _progress_to_stderr

    logger = logging.getLogger("latent_transforms.demo.run")
    with _progress_to_stderr(quiet=False):
        logger.info("inverting 3 images")
    with _progress_to_stderr(quiet=True):
        logger.info("hidden")
        logger.warning("shown anyway")
    logger.info("outside a command")
    err = capsys.readouterr().err
    assert err == "inverting 3 images\nshown anyway\n"


def test_the_command_line_and_the_package_start_without_importing_torch():
    """``latent-transforms --help`` and ``import latent_transforms`` import no torch (names load on first
    use); the first public name used imports what it needs."""
    code = (
        "import sys\n"
        "import latent_transforms\n"
        "from latent_transforms.cli import build_parser\n"
        "build_parser().format_help()\n"
        "print('torch' in sys.modules)\n"
        "latent_transforms.GanConfig\n"
        "print('torch' in sys.modules, latent_transforms.ConfigError.__name__)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "True", "ConfigError"]
