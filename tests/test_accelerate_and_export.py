"""AMP falls back on CPU, and the exported inference model reproduces the dygraph model.

(Several processes are tested for real, under paddle.distributed.launch, in test_multiprocess.py.)"""
import numpy as np
import paddle
import pytest
import tiny

from tinybert.errors import UserError
from tinybert.models.loading import load_model
from tinybert.serving import export
from tinybert.training import accelerate


def test_amp_on_cpu_warns_and_trains_in_float32(capsys):
    assert accelerate.resolve_amp("float16", "cpu") == "off"
    assert "float32" in capsys.readouterr().err
    # on a GPU the mode is checked against it first: tests/test_gpu_paths.py
    with pytest.raises(UserError):
        accelerate.resolve_amp("float8", "gpu")
    assert accelerate.grad_scaler("float16") is not None and accelerate.grad_scaler("bfloat16") is None


def test_exported_inference_model_gives_the_same_logits(tmp_path):
    tiny.make_bert(str(tmp_path / "m"), layers=2, hidden=16, model_type="tinybert", fit_size=32)
    model = load_model("tinybert", str(tmp_path / "m"))
    model.eval()
    export.export(model, str(tmp_path / "exported"))
    exported = export.load(str(tmp_path / "exported"))
    ids = paddle.to_tensor(np.random.default_rng(0).integers(5, 40, size=(3, 9)).astype("int64"))
    types, mask = paddle.zeros_like(ids), paddle.to_tensor(np.array([[1] * 9, [1] * 5 + [0] * 4, [1] * 2 + [0] * 7]))
    expected = model(input_ids=ids, token_type_ids=types, attention_mask=mask).numpy()
    np.testing.assert_allclose(exported(ids, types, mask).numpy(), expected, atol=1e-5)
    timing = export.export_best(str(tmp_path / "m"), "tinybert", str(tmp_path / "best_export"), 16)
    assert timing["batch_sizes"][1]["exported"]["ms_per_example"] > 0
