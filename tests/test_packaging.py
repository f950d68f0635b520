"""A plain `pip install` brings the seeds, presets and recipes, inside the package."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_data_inside_the_package_only(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    wheel = next(tmp_path.glob("selfinstruct-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"selfinstruct", wheel.name.split("-py3")[0] + ".dist-info"}
    for shipped in (
        "_data/seeds/seed_tasks.jsonl",
        "_data/filters/default.toml",
        "_data/filters/alpaca.toml",
        "_data/filters/teacher_phrases.txt",
        "_data/recipes/lora-7b-24gb.toml",
    ):
        assert f"selfinstruct/{shipped}" in names

    # Installed from the wheel (not this checkout), the shipped files are found and load.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True
    )
    probe = (
        "from selfinstruct.tasks.bootstrap.seeds import load_seeds; from selfinstruct.clean import load_preset;"
        "import selfinstruct; print(selfinstruct.__file__, len(load_seeds().tasks), len(load_preset('default').rules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(target)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    module_file, seeds, rules = out.stdout.split()
    assert module_file.startswith(str(target)) and int(seeds) >= 175 and int(rules) > 5
