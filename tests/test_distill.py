"""Distillation objectives and checks (docs/math.md) on tiny models of different widths."""
import json

import numpy as np
import paddle
import pytest
import tiny

from tinybert.data.features import collate, featurize
from tinybert.data.glue import read_examples
from tinybert.data.tasks import get_task
from tinybert.distillation import mapping
from tinybert.distillation import task as distill
from tinybert.errors import UserError
from tinybert.models.loading import load_model, load_model_and_keys, load_tokenizer
from tinybert.models.student import (
    PER_LAYER,
    SHARED,
    DistillationStudent,
    projection_mode,
    record_projection,
)
from tinybert.training.evaluate import model_inputs, predict_logits, to_tensors

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
    student = DistillationStudent(setup["student"], PER_LAYER)
    inputs = model_inputs(batch)
    out = student(**inputs, internals=True)
    target = distill.teacher_internals(setup["teacher"], inputs)
    return distill.intermediate_terms(out["hidden"], out["scores"], target.hidden, target.scores,
                                      mapping.uniform(4, 2), batch["attention_mask"])


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
    trained = DistillationStudent(student, PER_LAYER)
    objective = distill.intermediate_objective(teacher, mapping.uniform(4, 2), (1.0, 1.0))
    optimizer = paddle.optimizer.AdamW(learning_rate=3e-3, parameters=trained.parameters())
    trained.train()
    first = float(objective(trained, batch)["loss"])
    for _ in range(150):
        loss = objective(trained, batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    trained.eval()
    assert float(objective(trained, batch)["loss"]) <= first / 2


def test_teacher_stays_in_eval_mode_and_gets_no_gradients(setup):
    teacher, student = setup["teacher"], setup["student"]
    teacher.train()  # even if someone flipped it
    batch = collate(setup["features"], [0, 1], setup["tokenizer"].pad_token_id)
    objective = distill.intermediate_objective(teacher, mapping.uniform(4, 2), (1.0, 1.0))
    objective(DistillationStudent(student, PER_LAYER), batch)["loss"].backward()
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
    cached = distill.prediction_objective(cache, SPEC, 2.0)(student, batch)["loss"]
    tensors = to_tensors(batch)
    with paddle.no_grad():
        fresh_targets = teacher(**model_inputs(tensors))
    fresh = distill.prediction_loss(student(**model_inputs(tensors)), fresh_targets, SPEC, 2.0)
    assert float(cached) == pytest.approx(float(fresh), abs=1e-5)


def test_projection_mode_follows_the_flag_then_the_hub_name_then_the_weights(setup):
    loaded = setup["info"].loaded
    assert projection_mode("shared", "x", loaded) == SHARED
    assert projection_mode("auto", "tinybert-4l-312d-v2", None) == PER_LAYER
    assert projection_mode("auto", "tinybert-4l-312d", None) == SHARED
    assert projection_mode("auto", "x", {"tinybert.fit_dense.weight"}) == SHARED
    assert projection_mode("auto", "x", {"tinybert.fit_denses.0.weight"}) == PER_LAYER


def test_a_checkpoint_with_both_projection_kinds_and_no_record_says_which_it_uses(setup, capsys):
    loaded = setup["info"].loaded
    assert any(".fit_dense." in k for k in loaded) and any(".fit_denses." in k for k in loaded)
    assert projection_mode("auto", str(setup["root"] / "student"), loaded) == PER_LAYER
    assert "both projection kinds" in capsys.readouterr().out


def test_the_projection_kind_a_student_trained_is_recorded_in_its_config_and_wins(setup, tmp_path):
    student, info = load_model_and_keys("tinybert", str(setup["root"] / "student"), "--student", fit_size=32)
    record_projection(student, SHARED)
    student.save_pretrained(str(tmp_path / "saved"))
    with open(tmp_path / "saved" / "config.json", encoding="utf-8") as handle:
        assert json.load(handle)["distill_projection"] == SHARED
    _, info = load_model_and_keys("tinybert", str(tmp_path / "saved"), "--student", fit_size=32)
    assert projection_mode("auto", str(tmp_path / "saved"), info.loaded) == SHARED


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
