"""The safe hyperpyyaml reader: tags recorded, !ref resolved, nothing imported or executed."""
import sys

import pytest

from exporter import hyperyaml
from exporter.errors import ModelDirError
from exporter.hyperyaml import Tagged


def test_tags_are_recorded_not_executed():
    text = """
__set_seed: !apply:os.system ["echo pwned > /tmp/should_not_exist"]
module: !new:totally_unimportable_module.Thing
    x: 1
fn: !name:another.missing.function
"""
    before = set(sys.modules)
    doc = hyperyaml.loads(text)
    assert isinstance(doc["__set_seed"], Tagged) and doc["__set_seed"].kind == "apply"
    assert doc["__set_seed"].target == "os.system"
    assert doc["module"] == Tagged("new", "totally_unimportable_module.Thing", {"x": 1})
    assert doc["fn"].kind == "name" and doc["fn"].args is None
    assert "totally_unimportable_module" not in sys.modules
    assert set(sys.modules) - before <= {"ast"}  # nothing new imported by parsing


def test_refs_arithmetic_and_overrides():
    text = """
chunk_size: 25
token_mel_ratio: 2
path: ''
a: !ref <chunk_size> * <token_mel_ratio>
b: !ref <path>
c:
  d: !ref <a>
lst: [!ref <chunk_size>, 3]
eps: 1e-06
"""
    doc = hyperyaml.loads(text, overrides={"path": "/models/x"})
    assert doc["a"] == 50
    assert doc["b"] == "/models/x"
    assert doc["c"]["d"] == 50
    assert doc["lst"] == [25, 3]
    assert doc["eps"] == pytest.approx(1e-6) and isinstance(doc["eps"], float)


@pytest.mark.parametrize(
    "text, match",
    [
        ("a: !ref <missing>", "does not name a key"),
        ("a: 1\nb: !ref <a> + __import__('os')", "unsupported expression|cannot parse"),
        ("a: [1, 2", "not valid YAML"),
        ("- 1\n- 2", "expected a mapping"),
        ("a: !ref <b>\nb: !ref <a>", "too deep"),
    ],
)
def test_bad_yaml_gives_one_line_error(text, match):
    with pytest.raises(ModelDirError, match=match) as ei:
        hyperyaml.loads(text, where="x.yaml")
    assert "\n" not in str(ei.value)
