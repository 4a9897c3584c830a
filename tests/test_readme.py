"""The README's example config must stay a valid config."""

import re
import tomllib
from pathlib import Path

from engine import BuildConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_config_example_parses() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        config = BuildConfig.from_mapping(tomllib.loads(block))
        assert config.schema.id_column == "filename"


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert first_block
    lines = [ln for ln in first_block.group(1).splitlines() if ln and not ln.startswith("#")]
    assert lines[0].endswith("musicrec demo")
    assert re.search(r"python -m pytest( -n \d+)?$", lines[1])
    ci = (README.parent / ".ci" / "run").read_text()
    # CI runs exactly the README's test command, one command to a line (the Debian packages install beside pip)
    commands = lines[1].split(" && ")
    assert re.search("".join(rf"^{re.escape(c)}$(.|\n)*" for c in commands), ci, re.M), commands
