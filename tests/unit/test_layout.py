"""The layout's rules that the import contracts (``[tool.importlinter]`` in
pyproject.toml, run by ``scripts/test``) cannot state: every part of the package is
named by a contract, module names are unique, modules stay small, and slixmpp and
aiohttp load only when the gateway serves."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "xmpp_post"
MAX_LINES = 400
# Tools beside the layers: the lab (throwaway servers for tests, demo and benchmarks),
# the package's face and its entry point, and the helpers any layer may use.
OUTSIDE_THE_LAYERS = {"lab", "__init__", "__main__", "allocator", "deadlines", "ids",
                      "locks", "logs", "metrics", "tasks"}


def test_every_part_of_the_package_is_in_a_contract() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    named = str(contracts["contracts"])
    parts = {path.stem if path.is_file() else path.name for path in PACKAGE.iterdir()
             if (path.suffix == ".py" or (path / "__init__.py").exists())}
    missing = sorted(p for p in parts - OUTSIDE_THE_LAYERS if f"xmpp_post.{p}'" not in named)
    assert missing == []


def test_module_names_are_unique() -> None:
    names = Counter(p.stem for p in PACKAGE.rglob("*.py") if p.stem != "__init__")
    assert {name: n for name, n in names.items() if n > 1} == {}


def test_modules_are_small() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_slixmpp_and_aiohttp_load_only_when_serving(tmp_path: Path) -> None:
    """The command line reads and checks a whole configuration (sections of every front
    included), lists templates and prints the example, all without either library."""
    (tmp_path / "secret").write_text("s3cret\n")
    (tmp_path / "secret").chmod(0o600)
    (tmp_path / "gateway.toml").write_text(
        'domain = ["example.org"]\n'
        f'[accounts."bot@example.org"]\npassword_file = "{tmp_path / "secret"}"\n'
        '[topics]\nops = ["ops@example.org"]\n')
    path = str(tmp_path / "gateway.toml")
    code = f"""
import contextlib, io, sys
from xmpp_post import cli, config
from xmpp_post.config.live import LiveConfig
with contextlib.redirect_stdout(io.StringIO()):
    assert cli.main(["example-config"]) == 0
    assert cli.main(["template", "list", "--config", {path!r}]) == 0
LiveConfig(config.load({{}}, environ={{}}, config_file=cli.Path({path!r})))
print(sorted(m for m in ("slixmpp", "aiohttp") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"


def test_no_test_module_imports_another() -> None:
    """Shared test code lives in tests/helpers/ (fixtures in conftest.py), so a test
    module never depends on another one's private names."""
    offenders = [f"{path.relative_to(ROOT)}: {line.strip()}"
                 for path in sorted((ROOT / "tests").rglob("test_*.py"))
                 for line in path.read_text().splitlines()
                 if line.startswith(("from tests.unit", "from tests.e2e",
                                     "import tests.unit", "import tests.e2e"))]
    assert offenders == []
