"""ERNIE and Chinese models: internals, CLUE training, stage 1 with separate or shared
projections, export (README, "Chinese: CLUE tasks, ERNIE and TinyBERT-zh"). Tiny models built from configs, generated CLUE files."""
import json
import os

import numpy as np
import paddle
import pytest
import tiny

from tinybert import api
from tinybert.data.features import collate, concat_features, featurize
from tinybert.data.glue import Example, load_split
from tinybert.data.tasks import get_task
from tinybert.distillation import mapping
from tinybert.distillation.task import intermediate_dev_loss
from tinybert.models.internals import forward_with_internals
from tinybert.models.loading import load_model, load_tokenizer
from tinybert.models.student import PER_LAYER, PROJECTIONS_FILE, DistillationStudent
from tinybert.training.evaluate import model_inputs, predict_logits, to_tensors

FAST = dict(device="cpu", batch_size=8, eval_batch_size=16, max_seq_length=32, logging_steps=100, save_steps=3,
            max_steps=3, learning_rate=1e-3)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("zh")
    for task in tiny.CLUE_TASKS:
        tiny.write_clue_task(str(root / "clue"), task, n_train=16, n_dev=6)
    tiny.make_zh(str(root / "ernie-teacher"), "ernie", layers=2, hidden=32, heads=2)
    tiny.make_zh(str(root / "ernie-student"), "ernie", layers=1, hidden=16, heads=2, intermediate=32, seed=1)
    tiny.make_zh(str(root / "bert-zh"), "bert", layers=2, hidden=32, heads=2)
    tiny.make_zh(str(root / "tinybert-tiny-zh"), "tinybert", layers=1, hidden=16, heads=2, intermediate=32,
                 fit_size=32, seed=2)
    return root


# ------------------------------------------------------------------ internals against numpy
def layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer._epsilon) * layer.weight.numpy() + layer.bias.numpy()


def linear(x, layer):
    return x @ layer.weight.numpy() + layer.bias.numpy()


def gelu(x):
    from scipy.special import erf

    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def numpy_ernie(model, ids, types, mask):
    """ERNIE 3.0's forward in numpy (task-type embedding of task 0, post-LN layers): hidden
    states, pre-softmax scores and logits, the reference for the hooks."""
    ernie = model.ernie
    emb = ernie.embeddings
    words = emb.word_embeddings.weight.numpy()[ids] * (ids != model.config.pad_token_id)[..., None]  # padding_idx
    x = (words + emb.position_embeddings.weight.numpy()[np.arange(ids.shape[1])]
         + emb.token_type_embeddings.weight.numpy()[types] + emb.task_type_embeddings.weight.numpy()[0])
    x = layer_norm(x, emb.layer_norm)
    hidden, scores = [x], []
    heads = ernie.encoder.layers[0].self_attn.num_heads
    B, S, D = x.shape
    d = D // heads
    split = lambda t: t.reshape(B, S, heads, d).transpose(0, 2, 1, 3)  # noqa: E731
    for layer in ernie.encoder.layers:
        attn = layer.self_attn
        q, k, v = (split(linear(x, p)) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
        raw = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
        scores.append(raw)
        masked = raw + (1.0 - mask[:, None, None, :]) * -1e4
        weights = np.exp(masked - masked.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        context = (weights @ v).transpose(0, 2, 1, 3).reshape(B, S, D)
        x = layer_norm(x + linear(context, attn.out_proj), layer.norm1)
        x = layer_norm(x + linear(gelu(linear(x, layer.linear1)), layer.linear2), layer.norm2)
        hidden.append(x)
    pooled = np.tanh(linear(x[:, 0], ernie.pooler.dense))
    return hidden, scores, linear(pooled, model.classifier)


def test_ernie_hidden_states_scores_and_logits_match_a_numpy_forward(work):
    model = load_model("ernie", str(work / "ernie-teacher"))
    model.eval()
    assert model.ernie.embeddings.use_task_id  # shaped like ERNIE 3.0
    tokenizer = load_tokenizer("ernie", str(work / "ernie-teacher"))
    examples = [Example(("这部电影真好看", "我们很喜欢"), 1, 1), Example(("故事很差", "不"), 0, 2)]
    batch = collate(featurize(examples, tokenizer, 32, False), [0, 1], tokenizer.pad_token_id)
    assert batch["attention_mask"].min() == 0  # the short example is padded
    out = forward_with_internals(model, model_inputs(to_tensors(batch)))
    hidden, scores, logits = numpy_ernie(model, batch["input_ids"], batch["token_type_ids"],
                                         batch["attention_mask"].astype(np.float64))
    assert len(out.hidden) == 3 and len(out.scores) == 2
    for ours, reference in zip(out.hidden + out.scores, hidden + scores):
        np.testing.assert_allclose(ours.numpy(), reference, atol=1e-4)
    np.testing.assert_allclose(out.logits.numpy(), logits, atol=1e-4)


# ------------------------------------------------------------------ every CLUE task trains and evaluates
@pytest.mark.parametrize("task", tiny.CLUE_TASKS)
def test_every_clue_task_fine_tunes_and_evaluates(work, task):
    teacher = "ernie-teacher" if tiny.CLUE_TASKS.index(task) % 2 == 0 else "bert-zh"
    result = api.finetune_teacher(model_type=teacher.split("-")[0], model_name_or_path=str(work / teacher),
                                  task_name=task.lower(), glue_dir=str(work / "clue"),
                                  output_dir=str(work / "ft" / task), **{**FAST, "max_steps": 2, "save_steps": 2})
    records = [json.loads(line) for line in open(work / "ft" / task / "eval_results.jsonl", encoding="utf-8")]
    dev, = load_split(str(work / "clue"), get_task(task), "dev")
    model = load_model(teacher.split("-")[0], result["best_dir"], num_labels=get_task(task).num_labels)
    tokenizer = load_tokenizer(teacher.split("-")[0], result["best_dir"])
    features = featurize(dev.examples, tokenizer, 32, False)
    accuracy = float(np.mean(predict_logits(model, features, 16, tokenizer.pad_token_id).argmax(-1)
                             == features.labels))
    assert records[-1]["acc"] == pytest.approx(accuracy) and result["best"] == pytest.approx(max(
        r["acc"] for r in records))


# ------------------------------------------------------------------ ERNIE teacher -> ERNIE student
@pytest.fixture(scope="module")
def ernie_runs(work):
    common = dict(teacher_model_type="ernie", model_type="ernie", teacher_path=str(work / "ernie-teacher"),
                  task_name="AFQMC", glue_dir=str(work / "clue"), output_dir=str(work / "ernie-run"), **FAST)
    stage1 = api.distill(student_model_name_or_path=str(work / "ernie-student"), intermediate_distill=True, **common)
    stage2 = api.distill(student_model_name_or_path=stage1["best_dir"], **common)
    return stage1, stage2


def test_ernie_student_trains_separate_projections_kept_beside_best_inter_model(work, ernie_runs):
    stage1, _ = ernie_runs
    inter = stage1["best_dir"]
    state = paddle.load(os.path.join(inter, PROJECTIONS_FILE))
    assert sorted(tuple(v.shape) for v in state.values()) == [(16, 32)] * 2 + [(32,)] * 2  # layers + 1, per layer
    assert json.load(open(os.path.join(inter, "config.json")))["distill_projection"] == PER_LAYER
    assert not any("fit_dense" in name or "projection" in name for name in paddle.load(
        os.path.join(inter, "model_state.pdparams")))
    # the saved projections are the trained ones: with them the saved student gives the best dev loss
    teacher = load_model("ernie", str(work / "ernie-teacher"))
    student = DistillationStudent(load_model("ernie", inter), PER_LAYER, 32)
    assert student.load_projections(inter)
    tokenizer = load_tokenizer("ernie", inter)
    dev = concat_features([featurize(d.examples, tokenizer, 32, False)
                           for d in load_split(str(work / "clue"), get_task("AFQMC"), "dev")])
    loss = intermediate_dev_loss(student, teacher, mapping.build(2, 1, None), dev, 16, tokenizer.pad_token_id, (1.0, 1.0))
    assert loss["dev_loss"] == pytest.approx(stage1["best"], rel=1e-4)
    fresh = DistillationStudent(load_model("ernie", inter), PER_LAYER, 32)
    assert intermediate_dev_loss(fresh, teacher, mapping.build(2, 1, None), dev, 16, tokenizer.pad_token_id,
                                 (1.0, 1.0))["dev_loss"] != pytest.approx(stage1["best"], rel=1e-3)


def test_ernie_best_model_drops_the_projections_and_exports_within_1e4(work, ernie_runs, capsys):
    _, stage2 = ernie_runs
    best = stage2["best_dir"]
    assert not os.path.exists(os.path.join(best, PROJECTIONS_FILE))
    assert json.load(open(os.path.join(best, "config.json")))["architectures"] == ["ErnieForSequenceClassification"]
    manifest = api.export(model_dir=best, output_dir=str(work / "ernie-export"), task_name="afqmc",
                          glue_dir=str(work / "clue"), max_seq_length=32)
    assert manifest["source_model_type"] == "ernie" and manifest["evaluation"]["max_abs_logit_difference"] <= 1e-4
    (work / "pairs.tsv").write_text("这部电影真好看\t我们很喜欢\n故事很差\t不好看\n", encoding="utf-8")
    capsys.readouterr()
    api.predict(model_dir=str(work / "ernie-export"), input=str(work / "pairs.tsv"))
    served = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    model = load_model("ernie", best)
    tokenizer = load_tokenizer("ernie", best)
    features = featurize([Example(("这部电影真好看", "我们很喜欢"), 0, 1), Example(("故事很差", "不好看"), 0, 2)],
                         tokenizer, 32, False)
    logits = predict_logits(model, features, 2, tokenizer.pad_token_id)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    for line, expected in zip(served, probabilities):
        np.testing.assert_allclose([line["probabilities"][label] for label in ("0", "1")], expected, atol=1e-4)


# ------------------------------------------------------------------ BERT-zh teacher -> TinyBERT-zh student
def test_tinybert_zh_student_gets_the_shared_projection_automatically(work, capsys):
    source = str(work / "tinybert-tiny-zh")
    before = paddle.load(os.path.join(source, "model_state.pdparams"))
    result = api.distill(teacher_path=str(work / "bert-zh"), student_model_name_or_path=source, task_name="csl",
                         glue_dir=str(work / "clue"), intermediate_distill=True, output_dir=str(work / "zh-run"), **FAST)
    assert "projections: shared" in capsys.readouterr().out
    after = paddle.load(os.path.join(result["best_dir"], "model_state.pdparams"))
    changed = {name for name in after if name in before and not np.array_equal(after[name].numpy(), before[name].numpy())}
    assert any(".fit_dense." in name for name in changed) and not any(".fit_denses." in name for name in changed)
    assert not os.path.exists(os.path.join(result["best_dir"], PROJECTIONS_FILE))
    assert json.load(open(os.path.join(result["best_dir"], "config.json")))["distill_projection"] == "shared"
