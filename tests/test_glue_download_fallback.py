"""Missing files under the default glue_dir are fetched with PaddleNLP's GLUE loader; a
directory given with --glue_dir is never filled behind the user's back."""
import os

import pytest
import tiny

from tinybert.data import glue as data
from tinybert.data.tasks import get_task
from tinybert.errors import UserError

SPEC = get_task("RTE")


@pytest.fixture
def default_home(tmp_path, monkeypatch):
    home = tmp_path / "DATA_HOME" / "Glue"
    monkeypatch.setattr(data, "default_glue_dir", lambda: str(home))
    return home


def test_default_dir_downloads_with_paddlenlp_when_online(default_home, monkeypatch):
    calls = []

    def fake_download(spec, split):
        calls.append((spec.name, split))
        return tiny.write_task(str(default_home), spec.name)

    monkeypatch.setattr(data, "_download_with_paddlenlp", fake_download)
    path = data.locate(None, SPEC, "train.tsv")
    assert calls == [("RTE", "train")] and os.path.isfile(path)


def test_default_dir_offline_says_where_to_put_the_files(default_home, monkeypatch):
    monkeypatch.setattr(data, "_download_with_paddlenlp", lambda spec, split: None)
    with pytest.raises(UserError, match="could not be downloaded .* in .*DATA_HOME/Glue/RTE"):
        data.locate(None, SPEC, "dev.tsv")


def test_an_explicit_glue_dir_is_never_downloaded_into(default_home, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_download_with_paddlenlp", lambda spec, split: pytest.fail("no download expected"))
    with pytest.raises(UserError, match="mine/RTE/train.tsv does not exist; put the RTE files"):
        data.locate(str(tmp_path / "mine"), SPEC, "train.tsv")
