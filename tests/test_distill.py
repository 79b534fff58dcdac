"""Distillation objectives and checks (SPEC.md §2-§6) on tiny models of different widths."""
import numpy as np
import paddle
import pytest

import tiny
from tinybert import distill, mapping
from tinybert.data import read_examples
from tinybert.errors import UserError
from tinybert.evaluate import model_inputs, predict_logits, to_tensors
from tinybert.features import collate, featurize
from tinybert.internals import forward_with_internals
from tinybert.models import load_model, load_model_and_keys, load_tokenizer
from tinybert.tasks import get_task

SPEC = get_task("SST-2")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    tiny.make_bert(str(root / "teacher"), layers=4, hidden=32, heads=2)
    tiny.make_bert(str(root / "student"), layers=2, hidden=16, heads=2, model_type="tinybert", fit_size=32)
    glue = tiny.write_task(str(root / "glue"), "SST-2", n_train=24, n_dev=8)
    teacher = load_model("bert", str(root / "teacher"))
    student, info = load_model_and_keys("tinybert", str(root / "student"), "--student", fit_size=32)
    tokenizer = load_tokenizer("bert", str(root / "teacher"))
    examples = read_examples(f"{glue}/train.tsv", SPEC).examples
    features = featurize(examples, tokenizer, 64, False)
    return dict(root=root, teacher=teacher, student=student, info=info, tokenizer=tokenizer, features=features)


def terms_for(setup, batch):
    teacher, student = setup["teacher"], setup["student"]
    layer_map = mapping.uniform(4, 2)
    project = distill.Projector(student, distill.PER_LAYER)
    inputs = model_inputs(batch)
    return distill.intermediate_terms(forward_with_internals(student, inputs),
                                      distill.teacher_internals(teacher, inputs),
                                      layer_map, project, batch["attention_mask"])


def test_dynamic_padding_gives_the_same_losses_as_padding_to_max_seq_length(setup):
    setup["student"].eval()
    features, pad = setup["features"], setup["tokenizer"].pad_token_id
    indices = list(range(8))
    dynamic = to_tensors(collate(features, indices, pad))
    padded = to_tensors(collate(features, indices, pad, pad_to=64))
    assert dynamic["input_ids"].shape[1] < 64
    a, b = terms_for(setup, dynamic), terms_for(setup, padded)
    assert set(a) == set(b)
    for name in a:
        assert float(a[name]) == pytest.approx(float(b[name]), rel=1e-5, abs=1e-6), name
    la = distill.prediction_loss(setup["student"](**model_inputs(dynamic)), setup["teacher"](**model_inputs(dynamic)), SPEC, 1.0)
    lb = distill.prediction_loss(setup["student"](**model_inputs(padded)), setup["teacher"](**model_inputs(padded)), SPEC, 1.0)
    assert float(la) == pytest.approx(float(lb), abs=1e-5)


def test_every_mapped_layer_has_a_named_term_and_the_total_is_their_sum(setup):
    setup["student"].eval()
    batch = to_tensors(collate(setup["features"], [0, 1, 2], setup["tokenizer"].pad_token_id))
    terms = terms_for(setup, batch)
    assert {"hidden_s0_t0", "hidden_s1_t2", "hidden_s2_t4", "attn_s1_t2", "attn_s2_t4"} <= set(terms)
    parts = [float(v) for k, v in terms.items() if k.startswith(("hidden_s", "attn_s"))]
    assert float(terms["loss"]) == pytest.approx(sum(parts), rel=1e-5)


def test_stage_one_on_a_fixed_batch_at_least_halves_the_intermediate_loss(setup, tmp_path):
    student, _ = load_model_and_keys("tinybert", str(setup["root"] / "student"), "--student", fit_size=32)
    teacher = setup["teacher"]
    batch = collate(setup["features"], list(range(8)), setup["tokenizer"].pad_token_id)
    project = distill.Projector(student, distill.PER_LAYER)
    objective = distill.intermediate_objective(student, teacher, mapping.uniform(4, 2), project, (1.0, 1.0))
    optimizer = paddle.optimizer.AdamW(learning_rate=3e-3, parameters=student.parameters())
    student.train()
    first = float(objective(batch)["loss"])
    for _ in range(150):
        loss = objective(batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    student.eval()
    assert float(objective(batch)["loss"]) <= first / 2


def test_teacher_stays_in_eval_mode_and_gets_no_gradients(setup):
    teacher, student = setup["teacher"], setup["student"]
    teacher.train()  # even if someone flipped it
    batch = collate(setup["features"], [0, 1], setup["tokenizer"].pad_token_id)
    objective = distill.intermediate_objective(student, teacher, mapping.uniform(4, 2),
                                               distill.Projector(student, distill.PER_LAYER), (1.0, 1.0))
    objective(batch)["loss"].backward()
    assert not teacher.training
    assert all(p.grad is None for p in teacher.parameters())
    inputs = model_inputs(to_tensors(batch))
    teacher.train()
    first, second = (distill.teacher_internals(teacher, inputs).hidden[-1].numpy() for _ in range(2))
    np.testing.assert_array_equal(first, second)  # no dropout in the targets
    for p in student.parameters():
        p.clear_gradient()


def test_cached_teacher_logits_give_the_same_stage_two_loss_as_fresh_ones(setup):
    teacher, student, features = setup["teacher"], setup["student"], setup["features"]
    pad = setup["tokenizer"].pad_token_id
    cache = predict_logits(teacher, features, batch_size=5, pad_token_id=pad)
    student.eval()
    batch = collate(features, [3, 7, 1, 0], pad)
    cached = distill.prediction_objective(student, cache, SPEC, 2.0)(batch)["loss"]
    tensors = to_tensors(batch)
    with paddle.no_grad():
        fresh_targets = teacher(**model_inputs(tensors))
    fresh = distill.prediction_loss(student(**model_inputs(tensors)), fresh_targets, SPEC, 2.0)
    assert float(cached) == pytest.approx(float(fresh), abs=1e-5)


def test_projection_mode_follows_the_checkpoint(setup):
    assert distill.projection_mode("auto", setup["info"], "x") == distill.PER_LAYER
    assert distill.projection_mode("shared", setup["info"], "x") == distill.SHARED
    assert distill.projection_mode("auto", None, "tinybert-4l-312d-v2") == distill.PER_LAYER
    assert distill.projection_mode("auto", None, "tinybert-4l-312d") == distill.SHARED
    shared_only = type(setup["info"])(shapes={}, loaded={"tinybert.fit_dense.weight"})
    assert distill.projection_mode("auto", shared_only, "x") == distill.SHARED


def test_head_count_mismatch_is_refused(setup, tmp_path):
    tiny.make_bert(str(tmp_path / "s4"), layers=2, hidden=16, heads=4, model_type="tinybert", fit_size=32)
    other = load_model("tinybert", str(tmp_path / "s4"), fit_size=32)
    with pytest.raises(UserError, match="heads"):
        distill.check_attention_compatible(setup["teacher"], other)


def test_teacher_without_a_classifier_for_the_task_is_refused(setup, tmp_path):
    tiny.make_bert(str(tmp_path / "t3"), layers=2, num_labels=3)
    _, info = load_model_and_keys("bert", str(tmp_path / "t3"), "--teacher_path", num_labels=2)
    with pytest.raises(UserError, match="3 outputs"):
        distill.check_teacher_head(str(tmp_path / "t3"), info, SPEC)
    no_head = type(info)(shapes={k: v for k, v in info.shapes.items() if not k.startswith("classifier")}, loaded=set())
    with pytest.raises(UserError, match="no classifier"):
        distill.check_teacher_head("x", no_head, SPEC)
