"""Issue 6: AMP falls back on CPU, DataParallel wraps the student only, shards cover each epoch,
and the exported inference model reproduces the dygraph model."""
import numpy as np
import paddle
import pytest

import tiny
from tinybert import accelerate, export
from tinybert.errors import UserError
from tinybert.internals import forward_with_internals
from tinybert.models import load_model


def test_amp_on_cpu_warns_and_trains_in_float32(capsys):
    assert accelerate.resolve_amp("float16", "cpu") == "off"
    assert "float32" in capsys.readouterr().err
    assert accelerate.resolve_amp("bfloat16", "gpu") == "bfloat16"
    assert accelerate.resolve_amp("fp16", "gpu:0") == "float16"
    with pytest.raises(UserError):
        accelerate.resolve_amp("float8", "gpu")
    assert accelerate.grad_scaler("float16") is not None and accelerate.grad_scaler("bfloat16") is None


class FakeDataParallel(paddle.nn.Layer):
    """Stands in for paddle.DataParallel (which needs several GPUs): same ``_layers`` attribute."""

    def __init__(self, layers):
        super().__init__()
        self._layers = layers
        self.calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self._layers(*args, **kwargs)


def test_only_the_student_is_wrapped_and_hooks_reach_the_inner_model(tmp_path):
    tiny.make_bert(str(tmp_path / "s"), layers=2, hidden=16, model_type="tinybert", fit_size=32)
    student = load_model("tinybert", str(tmp_path / "s"))
    assert accelerate.wrap_student(student, 1) is student
    wrapped = accelerate.wrap_student(student, 2, wrapper=FakeDataParallel)
    assert isinstance(wrapped, FakeDataParallel) and accelerate.unwrap(wrapped) is student
    ids = paddle.to_tensor([[2, 7, 8, 3]])
    out = forward_with_internals(wrapped, {"input_ids": ids})
    assert wrapped.calls == 1  # the forward went through the wrapper (gradient sync)
    assert len(out.hidden) == 3 and len(out.scores) == 2


@pytest.mark.parametrize("count,world", [(10, 1), (10, 2), (11, 2), (9, 4)])
def test_shards_are_disjoint_equal_sized_and_cover_all_but_the_uneven_tail(count, world):
    batches = list(range(count))
    shards = [accelerate.shard(batches, rank, world) for rank in range(world)]
    assert len({len(s) for s in shards}) == 1
    flat = [b for s in shards for b in s]
    assert len(flat) == len(set(flat)) == count - count % world


def test_world_is_single_process_unless_launched(monkeypatch):
    monkeypatch.delenv("PADDLE_TRAINERS_NUM", raising=False)
    assert accelerate.world() == (0, 1)
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "4")
    monkeypatch.setenv("PADDLE_TRAINER_ID", "3")
    assert accelerate.world() == (3, 4)


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
    timing = export.latency(lambda *x: exported(*x), 2, 16, 40, repeats=2, warmup=1)
    assert timing["ms_per_example"] > 0
