"""The family layer: detection from the model directory, one family object per family, the
manifest's family field, and the runtime's dispatch on it."""
from __future__ import annotations

import json

import pytest

from exporter.errors import ModelDirError
from exporter.families import FAMILIES, detect_family, get_family, open_model_dir
from runtime_ref.errors import RuntimeRefError
from runtime_ref.families import FAMILIES as RUNTIME_FAMILIES
from runtime_ref.families import runtime_family


def test_every_exporter_family_has_a_runtime():
    assert set(FAMILIES) == set(RUNTIME_FAMILIES)
    for name in FAMILIES:
        fam = get_family(name)
        assert fam.name == name and fam.components and fam.marker


def test_cosyvoice2_dir_is_detected(tiny_model_dir):
    fam = detect_family(tiny_model_dir)
    assert fam.name == "cosyvoice2"
    md = open_model_dir(tiny_model_dir)
    assert md.family == "cosyvoice2"
    assert fam.constants(md)["sample_rate"] == 24000
    assert len(fam.describe(md)) == 3


def test_unknown_dir_names_every_family(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing")
    with pytest.raises(ModelDirError) as e:
        detect_family(tmp_path)
    msg = str(e.value)
    assert "not a model directory of a known family" in msg
    assert "cosyvoice2.yaml" in msg and "model.json" in msg


def test_cosyvoice1_is_still_named(tmp_path):
    (tmp_path / "cosyvoice.yaml").write_text("x: 1\n")
    with pytest.raises(ModelDirError, match="CosyVoice 1"):
        open_model_dir(tmp_path)


def test_runtime_refuses_unknown_family():
    assert runtime_family({"family": "cosyvoice2"}).name == "cosyvoice2"
    assert runtime_family({}).name == "cosyvoice2"  # bundles written before the field existed
    with pytest.raises(RuntimeRefError, match="bundle family 'nope' is not supported"):
        runtime_family({"family": "nope"})


def test_update_into_a_bundle_of_another_family_is_refused(tmp_path, tiny_md):
    from exporter.errors import SentisTTSError
    from exporter.export import export_components
    from exporter.spec import ExportOptions

    out = tmp_path / "b"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"schema_version": 1, "family": "zipvoice", "source": {}, "constants": {},
                                                   "components": {}, "graphs": {}, "files": {}, "voices": {}}))
    with pytest.raises(SentisTTSError, match="holds a zipvoice bundle"):
        export_components(tiny_md, out, [], ExportOptions(), mode="update")
