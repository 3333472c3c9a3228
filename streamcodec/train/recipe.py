"""A shipped model's recipe: one TOML file (recipes/*.toml) that lists every stage that makes it,
each a `streamcodec` command with its data and settings, its stop condition in steps; run with

    streamcodec train recipe recipes/image-photo.toml --runs runs/image-photo
    streamcodec train recipe recipes/image-photo.toml --runs /tmp/t --tiny --photos tests/photos

Running it again resumes: the stages already done (recorded in <runs>/recipe.json) are skipped,
and a stage cut short continues from its run folder like every training command. Placeholders in
a stage's arguments: {runs} (the runs folder), {out} (where the model is written), {corpus},
{photos}, {noise} (data folders; default under the cache), {steps} (the stage's `steps`, or
`tiny_steps` with --tiny). A stage with `data = "photos"` (or corpus, noise) builds that data and
is skipped when the folder is given. A stage's `noise_exclude` names noise sources it trains
without: it sees a noise folder of links to the rest of the bank, so which sources a stage used
is written in the recipe, not in what was deleted from a cache.
"""

import json
import tomllib
from pathlib import Path

from streamcodec.errors import StreamcodecError
from streamcodec.train.debian import cache_dir

DATA = ("corpus", "photos", "noise")


def load(path: Path) -> dict:
    try:
        recipe = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise StreamcodecError(f"cannot read recipe {path}: {exc}") from exc
    stages = recipe.get("stage")
    if not isinstance(stages, list) or not stages:
        raise StreamcodecError(f"recipe {path} has no [[stage]] entries")
    names = [s.get("name") for s in stages]
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise StreamcodecError(f"recipe {path}: every stage needs a name of its own")
    for s in stages:
        if not isinstance(s.get("args"), list) or not all(isinstance(a, str) for a in s["args"]):
            raise StreamcodecError(f"recipe {path}, stage {s['name']!r}: args must be a list of strings")
    return recipe


def _noise_view(bank: Path, exclude: list[str], folder: Path) -> Path:
    """A noise folder holding links to the bank's train/*.npy except the excluded sources."""
    train = folder / "train"
    train.mkdir(parents=True, exist_ok=True)
    for old in train.iterdir():
        old.unlink()
    sources = sorted((bank / "train").glob("*.npy"))
    if not sources:
        raise StreamcodecError(f"no noise in {bank}/train: run python -m streamcodec.train.noise")
    for src in sources:
        if src.stem not in exclude:
            (train / src.name).symlink_to(src.resolve())
    return folder


def run(path: Path, runs: Path, tiny: bool = False, out: Path | None = None, data: dict | None = None,
        main=None) -> list[str]:
    """Run (or resume) every stage of a recipe; returns the names of the stages run now."""
    from streamcodec import cli

    recipe = load(path)
    runs = Path(runs)
    runs.mkdir(parents=True, exist_ok=True)
    given = {k: Path(v) for k, v in (data or {}).items() if v is not None}
    folders = {k: given.get(k, cache_dir() / k) for k in DATA}
    values = {"runs": str(runs), "out": str(out or Path(recipe.get("out", runs / "model"))),
              **{k: str(v) for k, v in folders.items()}}
    state_path = runs / "recipe.json"
    done = json.loads(state_path.read_text())["done"] if state_path.exists() else []
    ran = []
    for stage in recipe["stage"]:
        name = stage["name"]
        if name in done or stage.get("data") in given:
            continue
        steps = stage.get("tiny_steps", stage.get("steps")) if tiny else stage.get("steps")
        stage_values = dict(values, steps=str(steps))
        if stage.get("noise_exclude"):
            stage_values["noise"] = str(_noise_view(folders["noise"], stage["noise_exclude"], runs / f"noise-{name}"))
        try:
            argv = [a.format(**stage_values) for a in stage["args"]]
        except (KeyError, IndexError) as exc:
            raise StreamcodecError(f"recipe {path}, stage {name!r}: unknown placeholder {exc}") from exc
        if tiny:
            argv += stage.get("tiny_args", [])
        print(f"recipe {Path(path).name}: stage {name}: streamcodec {' '.join(argv)}", flush=True)
        if (main or cli.main)(argv) != 0:
            raise StreamcodecError(f"recipe {path}: stage {name!r} failed; fix it and run the recipe again to resume")
        done.append(name)
        state_path.write_text(json.dumps({"recipe": str(path), "done": done}, indent=1))
        ran.append(name)
    return ran
