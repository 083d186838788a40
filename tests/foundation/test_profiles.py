import pytest

from exporter.errors import SentisTTSError
from exporter.profiles import apply_profile, load_profile
from exporter.spec import ExportOptions


def test_shipped_profiles_load():
    assert load_profile("full")["fp16"] is False
    assert load_profile("full-fp16")["fp16"] is True


def test_profile_fills_only_what_was_not_given(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("export:\n  fp16: true\n  flow_lens: [128, 256]\n  max_cache_len: 512\n")
    opts = apply_profile(ExportOptions(max_cache_len=300), load_profile(str(p)), explicit={"max_cache_len"})
    assert opts.fp16 is True and opts.flow_lens == (128, 256) and opts.max_cache_len == 300


def test_bad_profiles(tmp_path):
    with pytest.raises(SentisTTSError, match="not found"):
        load_profile("no-such-profile")
    p = tmp_path / "p.yaml"
    p.write_text("export:\n  fp17: true\n")
    with pytest.raises(SentisTTSError, match="unknown export option"):
        load_profile(str(p))
