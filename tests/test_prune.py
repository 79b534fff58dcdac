"""Pruning while distilling (issue 27): gates, budget, masked forward, slicing, resume.

The masked model with hard masks must be the sliced checkpoint; the gates' open probabilities
and the expected size are checked against sampling and against the parameters of real models;
the budget holds the expected counts on the schedule exactly; a killed run resumes to the same
gates and weights; pruning to the teacher's own shape changes nothing.
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tiny
from test_reliability import checkpoint_step, max_weight_difference, wait_for_checkpoint_then

from tinybert.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS, HIDDEN, HEADS, INTER = 3, 32, 4, 64  # head size 8


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("prune")
    tiny.write_task(str(work / "glue"), "SST-2", n_train=96, n_dev=16)
    tiny.make_bert(str(work / "teacher"), layers=LAYERS, hidden=HIDDEN, heads=HEADS, intermediate=INTER)
    tiny.make_bert(str(work / "still"), layers=LAYERS, hidden=HIDDEN, heads=HEADS, intermediate=INTER, dropout=0.0)
    return work


def load(path):
    from tinybert.models.loading import load_model_and_keys

    model, _ = load_model_and_keys("bert", str(path), "--teacher_path", num_labels=2)
    model.eval()
    return model


def batch(seed=0):
    import paddle

    rng = np.random.RandomState(seed)
    ids = rng.randint(5, len(tiny.VOCAB), (4, 11))
    mask = np.ones_like(ids)
    mask[1, 7:], mask[2, 4:] = 0, 0
    ids[mask == 0] = 0
    return {"input_ids": paddle.to_tensor(ids), "token_type_ids": paddle.to_tensor((np.arange(11) > 5) * mask),
            "attention_mask": paddle.to_tensor(mask)}


def some_hard(dims, seed=0):
    from tinybert.models.gates import Hard

    rng = np.random.RandomState(seed)
    pick = lambda n, k: np.sort(rng.permutation(n)[:k])  # noqa: E731
    layers = np.array([0, 2])
    return Hard(layers=layers, hidden=pick(HIDDEN, 16), heads=[pick(HEADS, 2) for _ in layers],
                neurons=[pick(INTER, 24) for _ in layers], dims=dims)


def test_hard_masks_give_the_logits_of_the_sliced_checkpoint(work, tmp_path):
    from paddlenlp.transformers import BertTokenizer

    from tinybert.distillation.prune import HardMasked, sliced_model
    from tinybert.models.gates import Dims
    from tinybert.training.checkpoint import save_pretrained_atomically

    teacher = load(work / "teacher")
    hard = some_hard(Dims.of(teacher))
    save_pretrained_atomically(str(tmp_path / "pruned"), sliced_model(teacher, hard),
                               BertTokenizer.from_pretrained(str(work / "teacher")))
    config = json.load(open(tmp_path / "pruned" / "config.json", encoding="utf-8"))
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"],
            config["intermediate_size"]) == (2, 16, 2, 24)
    pruned = load(tmp_path / "pruned")  # an ordinary PaddleNLP BERT classifier from disk
    inputs = batch()
    expected = HardMasked(teacher, hard)(**inputs).numpy()
    assert np.abs(pruned(**inputs).numpy() - expected).max() <= 1e-5
    assert np.abs(teacher(**inputs).numpy() - expected).max() > 1e-3  # something was cut


def test_open_probability_and_expected_size_match_sampling_and_real_models(work):
    import paddle

    from tinybert.distillation.prune import sliced_model
    from tinybert.models import gates

    log_alpha = paddle.to_tensor(np.linspace(-4, 4, 9).astype(np.float32))
    closed_form = 1 / (1 + np.exp(-(np.linspace(-4, 4, 9) - 2 / 3 * np.log(0.1 / 1.1))))
    assert np.allclose(gates.open_probability(log_alpha).numpy(), closed_form, atol=1e-6)
    paddle.seed(0)
    draws = np.stack([gates.sample(log_alpha).numpy() for _ in range(4000)])
    assert draws.min() == 0.0 and draws.max() == 1.0
    assert np.abs((draws > 0).mean(axis=0) - closed_form).max() < 0.03

    teacher = load(work / "teacher")
    dims = gates.Dims.of(teacher)
    hard = some_hard(dims, seed=1)
    counted = sum(int(np.prod(p.shape)) for p in sliced_model(teacher, hard).bert.encoder.parameters())
    m = hard.masks()
    assert gates.expected_size(m.layers, m.heads, m.neurons, m.hidden, dims) == counted
    assert gates.expected_size(None, None, None, None, dims) == sum(
        int(np.prod(p.shape)) for p in teacher.bert.encoder.parameters())

    rng = np.random.RandomState(0)  # soft gates: a Monte Carlo mean of the real count of sampled models
    p = {k: rng.uniform(0.2, 1.0, s) for k, s in (("layers", [3]), ("heads", [3, 4]), ("neurons", [3, 64]),
                                                  ("hidden", [32]))}
    draws = {k: rng.random_sample([20000] + list(v.shape)) < v for k, v in p.items()}
    h = draws["hidden"].sum(-1)[:, None]
    a, i = draws["heads"].sum(-1) * 8, draws["neurons"].sum(-1)
    sizes = (draws["layers"] * (4 * h * a + 2 * h * i + 3 * a + i + 6 * h)).sum(-1)
    expected = gates.expected_size(p["layers"], p["heads"], p["neurons"], p["hidden"], dims)
    assert abs(expected - sizes.mean()) < 4 * sizes.std() / np.sqrt(len(sizes))
    flops = (draws["layers"] * (8 * h * a + 4 * h * i + 4 * 40 * a)).sum(-1)
    expected = gates.expected_size(p["layers"], p["heads"], p["neurons"], p["hidden"], dims, "flops", 40)
    assert abs(expected - flops.mean()) < 4 * flops.std() / np.sqrt(len(flops))


def test_the_budget_holds_expected_counts_on_the_schedule_and_keeps_them_there(work):
    import paddle

    from tinybert.distillation import budget
    from tinybert.models import gates

    dims = gates.Dims(layers=3, heads=4, head_size=8, neurons=64, hidden=32)
    target = budget.parse_target("2x16x24", dims, 40)
    rng = np.random.RandomState(0)
    raw = {k: paddle.to_tensor(rng.normal(0, 3, dims.shape(k)).astype(np.float32), stop_gradient=False)
           for k in gates.KINDS}
    for progress in (0.0, 0.25, 1.0):
        counts = gates.expected_counts(budget.constrain(raw, target, dims, progress, 40), dims)
        toward = lambda full, final: full + (final - full) * progress  # noqa: E731
        assert abs(float(counts["layers"]) - toward(3, 2)) < 1e-3
        assert abs(float(counts["hidden"]) - toward(32, 16)) < 1e-3
        assert np.abs(counts["heads"].numpy() - toward(4, 2)).max() < 1e-3
        assert np.abs(counts["neurons"].numpy() - toward(64, 24)).max() < 1e-3
    # the shift is differentiated through: the constrained counts do not move with log_alpha
    counts = gates.expected_counts(budget.constrain(raw, target, dims, 0.5, 40), dims)
    (counts["hidden"] + counts["neurons"].sum()).backward()
    assert np.abs(raw["hidden"].grad.numpy()).max() < 1e-4 and np.abs(raw["neurons"].grad.numpy()).max() < 1e-4

    share = budget.parse_target("flops:0.3", dims, 40)
    full = gates.expected_size(None, None, None, None, dims, "flops", 40)
    p = gates.probabilities(budget.constrain(raw, share, dims, 1.0, 40))
    size = float(gates.expected_size(p["layers"], p["heads"], p["neurons"], p["hidden"], dims, "flops", 40))
    assert abs(size / full - 0.3) < 1e-3


@pytest.mark.parametrize("text, message", [
    ("4x16", r"layers 4 is impossible, the teacher has 3"),
    ("2x20", r"multiple of 8 \(e.g. 16 or 24\)"),
    ("2x16x100", r"FFN size 100 is impossible, the teacher has 64"),
    ("params:0", r"above 0 and at most 1"),
    ("params:0.0001", r"below the smallest model that can be built"),
    ("three by 192", r"give LAYERSxHIDDEN\[xINTERMEDIATE\]"),
])
def test_impossible_targets_are_one_line_errors(text, message):
    from tinybert.distillation import budget
    from tinybert.models.gates import Dims

    with pytest.raises(UserError, match=message) as caught:
        budget.parse_target(text, Dims(layers=3, heads=4, head_size=8, neurons=64, hidden=32), 40)
    assert "\n" not in str(caught.value)


def prune_cmd(output, *extra):
    return [sys.executable, os.path.join(ROOT, "prune_distill.py"), "--teacher_path", "teacher", "--prune_to", "2x16",
            "--task_name", "SST-2", "--glue_dir", "glue", "--device", "cpu", "--batch_size", "8",
            "--num_train_epochs", "3", "--save_steps", "4", "--logging_steps", "1000", "--learning_rate", "1e-3",
            "--gate_learning_rate", "0.2", "--max_seq_length", "24", "--output_dir", output, *extra]


def test_sigkill_then_resume_gives_the_masks_and_weights_of_an_uninterrupted_run(work):
    reference = subprocess.run(prune_cmd("uninterrupted"), cwd=work, capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr
    proc = subprocess.Popen(prune_cmd("killed"), cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = str(work / "killed" / "checkpoint-last-prune")
    assert wait_for_checkpoint_then(proc, checkpoint, 8, signal.SIGKILL) == -signal.SIGKILL
    killed_at = checkpoint_step(checkpoint)
    assert 8 <= killed_at < 36
    resumed = subprocess.run(prune_cmd("killed", "--resume"), cwd=work, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"at step {killed_at}" in resumed.stdout
    weights = os.path.join("checkpoint-last-prune", "pruning.pdparams")  # model, gates, projections, step
    assert max_weight_difference(str(work / "uninterrupted" / weights), str(work / "killed" / weights)) <= 1e-5
    records = [json.load(open(work / run / "best_pruned_model" / "pruning.json", encoding="utf-8"))
               for run in ("uninterrupted", "killed")]
    assert records[0] == records[1] and records[0]["shape"].startswith("2x16x")


def test_pruning_to_the_full_shape_changes_nothing(work):
    """No gate, the teacher's own function (every distilled term exactly 0), and a slice that is the
    identity: the saved model is the trained copy itself, at the teacher's shape."""
    import paddle

    from tinybert import api
    from tinybert.distillation.budget import parse_target
    from tinybert.distillation.prune import PruningStudent
    from tinybert.models.gates import Dims
    from tinybert.models.internals import forward_with_internals
    from tinybert.models.loading import read_state_dict

    teacher, copy = load(work / "still"), load(work / "still")
    student = PruningStudent(copy, parse_target(f"{LAYERS}x{HIDDEN}", Dims.of(copy), 24), 1.0, 10, 24, True)
    student.train()  # dropout 0: training mode computes what the teacher does
    inputs = batch()
    out = student(**inputs)
    with paddle.no_grad():
        reference = forward_with_internals(teacher, inputs)
    pairs = list(zip(out["hidden"], reference.hidden)) + list(zip(out["scores"], reference.scores))
    assert max(float((a - b).abs().max()) for a, b in pairs + [(out["logits"], reference.logits)]) == 0.0

    result = api.prune(teacher_path=str(work / "still"), prune_to=f"{LAYERS}x{HIDDEN}", task_name="SST-2",
                       glue_dir=str(work / "glue"), output_dir=str(work / "full"), max_steps=3, save_steps=3,
                       batch_size=8, max_seq_length=24, device="cpu", learning_rate=1e-3)
    record = json.load(open(os.path.join(result["best_dir"], "pruning.json"), encoding="utf-8"))
    assert record["gates"] == [] and record["kept_layers_0_based"] == [0, 1, 2] and record["shape"].startswith(
        f"{LAYERS}x{HIDDEN}x{INTER} ")
    trained = {k[len("model."):]: v for k, v in read_state_dict(
        str(work / "full" / "checkpoint-last-prune" / "pruning.pdparams")).items() if k.startswith("model.")}
    saved = load(result["best_dir"]).state_dict()
    assert set(saved) == set(trained)
    assert max(float(np.abs(saved[k].numpy() - np.asarray(trained[k])).max()) for k in saved) == 0.0
