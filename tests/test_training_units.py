"""The pieces of a training run, one process: the student layer, freezing, batches, resume settings."""
import numpy as np
import paddle
import pytest
import tiny

from tinybert.data.batches import TaskBatches, shard
from tinybert.data.features import Features
from tinybert.errors import UserError
from tinybert.models.internals import forward_with_internals
from tinybert.models.loading import load_model
from tinybert.models.student import (
    PER_LAYER,
    SHARED,
    DistillationStudent,
    freeze_unused,
)
from tinybert.training.checkpoint import changed_settings
from tinybert.training.distributed import launched_world


@pytest.fixture()
def student(tmp_path):
    tiny.make_bert(str(tmp_path / "s"), layers=2, hidden=16, model_type="tinybert", fit_size=32, dropout=0.0)
    return load_model("tinybert", str(tmp_path / "s"), fit_size=32)


def inputs():
    ids = paddle.to_tensor([[2, 7, 8, 9, 3], [2, 10, 3, 0, 0]])
    return {"input_ids": ids, "token_type_ids": paddle.zeros_like(ids),
            "attention_mask": paddle.to_tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}


@pytest.mark.parametrize("mode", [PER_LAYER, SHARED])
def test_the_student_layer_returns_projected_hidden_states_and_scores_from_one_forward(student, mode):
    student.eval()
    layer = DistillationStudent(student, mode)
    out = layer(**inputs(), internals=True)
    plain = forward_with_internals(student, inputs())
    encoder = student.tinybert
    for i, hidden in enumerate(plain.hidden):
        projection = encoder.fit_denses[i] if mode == PER_LAYER else encoder.fit_dense
        np.testing.assert_allclose(out["hidden"][i].numpy(), projection(hidden).numpy(), atol=1e-6)
        assert out["hidden"][i].shape[-1] == 32  # the teacher's width
    assert len(out["scores"]) == 2
    np.testing.assert_allclose(out["logits"].numpy(), student(**inputs()).numpy(), atol=1e-6)
    np.testing.assert_allclose(layer(**inputs()).numpy(), out["logits"].numpy(), atol=1e-6)


def trainable(layer):
    return {name for name, p in layer.named_parameters() if not p.stop_gradient}


def test_stage_one_trains_encoder_and_the_used_projection_only(student):
    layer = DistillationStudent(student, PER_LAYER)
    freeze_unused(layer, "intermediate")
    names = trainable(layer)
    assert any(".fit_denses." in n for n in names) and not any(".fit_dense." in n for n in names)
    assert not any("classifier" in n or "pooler" in n for n in names)
    assert any("encoder.layers.1" in n for n in names) and any("word_embeddings" in n for n in names)


def test_every_trainable_parameter_of_stage_one_receives_a_gradient(student):
    """What paddle.DataParallel's reducer requires of the one wrapped forward."""
    layer = DistillationStudent(student, SHARED)
    freeze_unused(layer, "intermediate")
    out = layer(**inputs(), internals=True)
    (sum(h.mean() for h in out["hidden"]) + sum(s.mean() for s in out["scores"])).backward()
    missing = [n for n, p in layer.named_parameters() if not p.stop_gradient and p.grad is None]
    assert not missing


def test_stage_two_trains_the_classifier_and_no_projection(student):
    layer = DistillationStudent(student)
    freeze_unused(layer, "prediction")
    names = trainable(layer)
    assert any("classifier" in n for n in names) and any("pooler" in n for n in names)
    assert not any(".fit_dense" in n for n in names)


def features(count, seed=0):
    rng = np.random.default_rng(seed)
    ids = [list(rng.integers(5, 30, size=rng.integers(2, 12))) for _ in range(count)]
    return Features(ids, [[0] * len(i) for i in ids], np.zeros(count, dtype=np.int64))


@pytest.mark.parametrize("count,world", [(10, 1), (10, 2), (11, 2), (9, 4)])
def test_shards_are_disjoint_equal_sized_and_cover_all_but_the_uneven_tail(count, world):
    shards = [shard(list(range(count)), rank, world) for rank in range(world)]
    assert len({len(s) for s in shards}) == 1
    flat = [b for s in shards for b in s]
    assert len(flat) == len(set(flat)) == count - count % world


def test_every_rank_gets_the_same_number_of_batches_and_the_ranks_share_no_example():
    data = features(45)
    ranks = [TaskBatches(data, 4, seed=3, pad_token_id=0, rank=r, world_size=3) for r in range(3)]
    epochs = [list(source.epoch(1)) for source in ranks]
    assert {len(e) for e in epochs} == {ranks[0].batches_per_epoch} == {4}  # 12 batches, 4 each
    seen = [i for e in epochs for batch in e for i in batch["index"]]
    assert len(seen) == len(set(seen)) == 45


def test_an_epoch_resumed_at_a_position_yields_the_rest_of_the_same_batches():
    source = TaskBatches(features(40), 4, seed=5, pad_token_id=0)
    whole = [b["index"].tolist() for b in source.epoch(2)]
    assert [b["index"].tolist() for b in source.epoch(2, start=3)] == whole[3:]
    assert [b["index"].tolist() for b in source.epoch(3)] != whole


def test_fewer_batches_than_processes_is_a_user_error():
    with pytest.raises(UserError, match="3 training examples make 1 batches of --batch_size 8, fewer than the 2"):
        TaskBatches(features(3), 8, seed=0, pad_token_id=0, rank=0, world_size=2)


def test_the_fingerprint_changes_with_the_token_ids():
    a, b = features(20), features(20)
    assert a.fingerprint() == b.fingerprint()
    b.input_ids[7] = b.input_ids[7] + [5]
    assert a.fingerprint() != b.fingerprint()


def test_changed_resume_settings_are_named_by_their_flags():
    saved = {"world_size": 2, "batch_size": 32, "seed": 42, "max_steps": -1}
    now = {"world_size": 1, "batch_size": 16, "seed": 42, "max_steps": -1}
    assert changed_settings(saved, now) == ["number of processes: 2 -> 1", "--batch_size: 32 -> 16"]
    assert changed_settings(saved, dict(saved)) == []


def test_world_is_one_process_unless_launched(monkeypatch):
    monkeypatch.delenv("PADDLE_TRAINERS_NUM", raising=False)
    monkeypatch.delenv("PADDLE_TRAINER_ID", raising=False)
    assert launched_world() == (0, 1)
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "4")
    monkeypatch.setenv("PADDLE_TRAINER_ID", "3")
    assert launched_world() == (3, 4)


def test_the_meter_reads_the_mean_of_each_term_once_and_names_a_nan_with_its_steps():
    from tinybert.training.meter import NonFiniteLoss, TermMeter

    meter = TermMeter("intermediate")
    for loss, hidden in ((1.0, 0.5), (3.0, 1.5)):
        meter.add({"loss": paddle.to_tensor(loss), "hidden": paddle.to_tensor(hidden)})
    values = meter.read(step=2, with_speed=True)
    assert values["loss"] == pytest.approx(2.0) and values["hidden"] == pytest.approx(1.0)
    assert values["steps_per_s"] > 0 and 0 <= values["data_wait"] <= 1
    assert meter.read(step=2) == {}  # read once: the sums start over
    for loss in (1.0, float("nan"), 2.0):
        meter.add({"loss": paddle.to_tensor(loss)})
    with pytest.raises(NonFiniteLoss, match="'loss' became nan between steps 3 and 5"):
        meter.read(step=5)


def test_the_learning_rate_rises_over_the_warmup_then_falls_to_zero():
    from tinybert.training.optim import warmup_then_decay

    factor = warmup_then_decay(4, 20)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == 1.0 and factor(12) == pytest.approx(0.5) and factor(20) == 0.0


@pytest.mark.parametrize("compiled,count,reason", [(False, 0, "has no CUDA"), (True, 0, "sees no GPU")])
def test_gpu_requested_without_a_usable_gpu_falls_back_to_the_cpu_with_one_warning(monkeypatch, capsys, compiled,
                                                                                   count, reason):
    from tinybert.runtime import select_device

    monkeypatch.setattr(paddle.device, "is_compiled_with_cuda", lambda: compiled)
    monkeypatch.setattr(paddle.device.cuda, "device_count", lambda: count)
    assert select_device("gpu") == "cpu"
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and reason in err[0] and "using the CPU" in err[0]
    assert paddle.get_device() == "cpu"


def test_an_unknown_device_is_a_user_error():
    from tinybert.runtime import select_device

    with pytest.raises(UserError, match="--device tpu"):
        select_device("tpu")


def test_an_optimizer_state_loads_in_a_process_that_numbered_its_layers_differently(tmp_path):
    """Paddle names an optimizer's state after generated parameter names, which count the layers
    built so far: a notebook that built other models first numbers them differently. The
    checkpoint keys the state by structured names, so the resume finds its moments."""
    import paddle

    from tinybert.training.checkpoint import load_training_state, parameter_paths, renamed, save_training_state

    def build():
        model = paddle.nn.Sequential(paddle.nn.Linear(3, 4), paddle.nn.LayerNorm(4))
        return model, paddle.optimizer.AdamW(learning_rate=0.1, parameters=model.parameters())

    paddle.seed(0)
    model, optimizer = build()
    model(paddle.rand([2, 3])).sum().backward()
    optimizer.step()
    optimizer.clear_grad()
    save_training_state(str(tmp_path / "ckpt"), {"model": model}, optimizer, {"settings": {}})
    paddle.nn.Linear(2, 2), paddle.nn.LayerNorm(2)  # other layers first: the generated names move on
    again, resumed = build()
    assert {p.name for p in again.parameters()}.isdisjoint(p.name for p in model.parameters())
    load_training_state(str(tmp_path / "ckpt"), {"model": again}, resumed, {})
    x = paddle.rand([2, 3])
    for layer, opt in ((again, resumed), (model, optimizer)):  # one more step each, on the same batch
        layer(x).sum().backward()
        opt.step()
        opt.clear_grad()

    def by_path(opt, layer):
        names = {p.name: path for path, p in parameter_paths({"model": layer}).items()}
        return {k: v.numpy() for k, v in renamed(opt.state_dict(), names).items() if hasattr(v, "numpy")}

    expected, found = by_path(optimizer, model), by_path(resumed, again)
    assert sorted(expected) == sorted(found) and any("moment2" in k for k in found)
    for key in expected:  # the resumed optimizer continued from the saved moments, not from zero
        np.testing.assert_allclose(found[key], expected[key], rtol=1e-6, err_msg=key)
    for a, b in zip(again.parameters(), model.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
