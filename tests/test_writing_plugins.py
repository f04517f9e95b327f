"""docs/writing_plugins.md is executed: its files are written, compared with examples/, installed
with pip, and its commands run — conformance kit, `seqattn plugins`, a training run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import ENV, ROOT

DOC = ROOT / "docs" / "writing_plugins.md"
EXAMPLE = ROOT / "examples" / "seqattn-cosine"


def blocks():
    return re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_every_file_block_matches_the_example():
    files = {}
    for lang, body in blocks():
        first, _, rest = body.partition("\n")
        if first.startswith("# file: "):
            files[first[len("# file: "):]] = rest
    assert set(files) == {str(p.relative_to(EXAMPLE)) for p in EXAMPLE.rglob("*") if p.is_file()
                          and "__pycache__" not in p.parts and ".egg-info" not in str(p)}
    for path, text in files.items():
        assert (EXAMPLE / path).read_text(encoding="utf-8") == text, path


def test_the_walkthrough_runs(tmp_path):
    work = tmp_path / "seqattn-cosine"
    work.mkdir()
    env = {**ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{ENV['PATH']}", "PIP_NO_INDEX": "1"}
    outputs = []
    try:
        for lang, body in blocks():
            first, _, rest = body.partition("\n")
            if first.startswith("# file: "):
                target = work / first[len("# file: "):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(rest, encoding="utf-8")
            elif lang == "bash":
                for command in body.strip().splitlines():
                    out = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True,
                                         timeout=600)
                    assert out.returncode == 0, (command, out.stdout[-2000:], out.stderr[-2000:])
                    outputs.append((command, out.stdout))
            else:
                assert lang == "text", f"unlabelled {lang} block"
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "seqattn-cosine"], env=env,
                       capture_output=True)
    listed = dict(outputs)["seqattn plugins | grep cosine"]
    assert "attention" in listed and "seqattn-cosine" in listed and "seqattn_cosine.cosine" in listed
    assert (work / "run" / "results.json").is_file()
    assert "passed" in dict(outputs)["python -m pytest -q tests"]
