"""Narrow students cut from the teacher (tinybert.models.width, distillation.importance, the builder's width flags).

The weights are checked against the teacher's, recomputed here in numpy from the recorded
selection; the importance scores against an independent computation; and the selection
against random selections of the same shape on a tiny model trained for real.
"""
import json
import math
import os

import numpy as np
import pytest
import tiny
from scripts_import import load_script

from tinybert.distillation import importance
from tinybert.models import width
from tinybert.tools import student_builder as sb

LAYERS, HIDDEN, HEADS, INTER = 3, 32, 4, 64


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("narrow")
    tiny.write_task(str(root / "glue"), "SST-2", n_train=48, n_dev=8)
    tiny.make_bert(str(root / "teacher"), layers=LAYERS, hidden=HIDDEN, heads=HEADS, intermediate=INTER, seed=5)
    return root


def state_of(directory):
    import paddle

    return {k: v.numpy() for k, v in paddle.load(os.path.join(directory, "model_state.pdparams")).items()}


def data_for(work, **kwargs):
    return importance.ImportanceData(task_name="SST-2", glue_dir=str(work / "glue"), max_seq_length=32, **kwargs)


@pytest.fixture(scope="module")
def narrow(work):
    out = str(work / "narrow")
    record = sb.build_student(str(work / "teacher"), out, layers=[0, 2], hidden_size=16, intermediate_size=24,
                              keep_classifier=True, data=data_for(work))
    return out, record


def test_every_cut_weight_is_the_teachers_kept_rows_and_columns(work, narrow):
    out, record = narrow
    teacher, student = state_of(str(work / "teacher")), state_of(out)
    chosen = record["selection"]
    h = np.array(chosen["hidden"])
    assert record["kept_layers_0_based"] == [0, 2] and len(h) == 16 and record["intermediate_size"] == 24
    expected = {"embeddings.word_embeddings.weight": lambda w: w[:, h],
                "embeddings.position_embeddings.weight": lambda w: w[:, h],
                "embeddings.token_type_embeddings.weight": lambda w: w[:, h],
                "embeddings.layer_norm.weight": lambda w: w[h], "embeddings.layer_norm.bias": lambda w: w[h],
                "pooler.dense.weight": lambda w: w[np.ix_(h, h)], "pooler.dense.bias": lambda w: w[h]}
    for name, cut in expected.items():
        np.testing.assert_array_equal(student["tinybert." + name], cut(teacher["bert." + name]))
    np.testing.assert_array_equal(student["classifier.weight"], teacher["classifier.weight"][h])
    scale = math.sqrt((16 // HEADS) / (HIDDEN // HEADS))  # queries keep the teacher's score scale
    for new, old in enumerate([0, 2]):
        qk, v, n = (np.array(chosen["layers"][new][k]) for k in ("qk", "v", "neurons"))
        t = lambda name: teacher[f"bert.encoder.layers.{old}.{name}"]  # noqa: E731
        s = lambda name: student[f"tinybert.encoder.layers.{new}.{name}"]  # noqa: E731
        np.testing.assert_allclose(s("self_attn.q_proj.weight"), t("self_attn.q_proj.weight")[np.ix_(h, qk)] * scale,
                                   rtol=1e-6)
        np.testing.assert_allclose(s("self_attn.q_proj.bias"), t("self_attn.q_proj.bias")[qk] * scale, rtol=1e-6)
        np.testing.assert_array_equal(s("self_attn.k_proj.weight"), t("self_attn.k_proj.weight")[np.ix_(h, qk)])
        np.testing.assert_array_equal(s("self_attn.v_proj.weight"), t("self_attn.v_proj.weight")[np.ix_(h, v)])
        np.testing.assert_array_equal(s("self_attn.v_proj.bias"), t("self_attn.v_proj.bias")[v])
        np.testing.assert_array_equal(s("self_attn.out_proj.weight"), t("self_attn.out_proj.weight")[np.ix_(v, h)])
        np.testing.assert_array_equal(s("linear1.weight"), t("linear1.weight")[np.ix_(h, n)])
        np.testing.assert_array_equal(s("linear1.bias"), t("linear1.bias")[n])
        np.testing.assert_array_equal(s("linear2.weight"), t("linear2.weight")[np.ix_(n, h)])
        for name in ("self_attn.out_proj.bias", "linear2.bias", "norm1.weight", "norm1.bias", "norm2.bias"):
            np.testing.assert_array_equal(s(name), t(name)[h])
        d = HIDDEN // HEADS  # each student head keeps d' = 4 dims of the same teacher head
        for dims in (qk, v):
            assert [sorted(set(i // d for i in dims[j * 4:(j + 1) * 4])) for j in range(HEADS)] == [[0], [1], [2], [3]]
    assert not any(k.startswith("tinybert.encoder.layers.2.") for k in student)


def test_projections_start_as_the_selection(work, narrow):
    out, record = narrow
    state = state_of(out)
    hidden = record["selection"]["hidden"]
    for index in range(3):  # embeddings + 2 layers
        weight = state[f"tinybert.fit_denses.{index}.weight"]
        assert weight.shape == (16, HIDDEN)
        expected = np.zeros((16, HIDDEN), dtype=np.float32)
        for i, j in enumerate(hidden):
            expected[i, j] = 1.0
        np.testing.assert_array_equal(weight, expected)
        np.testing.assert_array_equal(state[f"tinybert.fit_denses.{index}.bias"], np.zeros(HIDDEN))


def test_the_narrow_student_loads_and_distils_as_an_ordinary_checkpoint(work, narrow):
    import paddle

    from tinybert.models.loading import load_model

    out, record = narrow
    model = load_model("tinybert", out, num_labels=2)
    config = model.tinybert.config
    assert (config.hidden_size, config.intermediate_size, config.fit_size, config.num_attention_heads) == (16, 24, 32, 4)
    assert record["criterion"].startswith("importance") and record["task"] == "SST-2"
    assert record["importance_examples"] == 48
    saved = json.load(open(os.path.join(out, sb.RECORD_FILE)))
    assert saved["selection"] == record["selection"] and saved["source"] == os.path.abspath(str(work / "teacher"))
    model.eval()
    logits = model(paddle.to_tensor([[2, 7, 20, 3]]))
    assert logits.shape == [1, 2] and np.isfinite(logits.numpy()).all()


def test_nothing_cut_through_the_slicer_is_the_teacher(work):
    """Full width via width.slice_encoder (the path a narrow student takes): the same function."""
    import paddle
    from paddlenlp.transformers import BertForSequenceClassification

    teacher = BertForSequenceClassification.from_pretrained(str(work / "teacher"))
    teacher.eval()
    source = {k[len("bert."):]: v.numpy() for k, v in teacher.state_dict().items() if k.startswith("bert.")}
    scores = np.random.default_rng(0).random(HIDDEN)  # any scores: keeping all keeps all, in order
    selection = width.select(scores, [scores] * LAYERS, [scores] * LAYERS, [np.random.default_rng(1).random(INTER)]
                             * LAYERS, HEADS, HIDDEN, INTER)
    copy = BertForSequenceClassification.from_pretrained(str(work / "teacher"))
    sliced = width.slice_encoder(source, list(range(LAYERS)), selection)
    copy.set_state_dict({"bert." + k: paddle.to_tensor(v) for k, v in sliced.items()})
    copy.eval()
    ids = paddle.to_tensor([[2, 7, 20, 30, 3, 0], [2, 5, 6, 3, 8, 3]])
    with paddle.no_grad():
        np.testing.assert_array_equal(copy(ids).numpy(), teacher(ids).numpy())


# ------------------------------------------------------------ importance
def test_gate_gradients_equal_activation_times_gradient_computed_directly(work):
    """dL/d(gate) per example == sum_t a_t * dL/da_t, with dL/da from paddle's own autograd of
    the activation (retain_grads), and the residual score == mean |h| over real tokens (numpy)."""
    import paddle.nn.functional as F

    from tinybert.models.loading import load_model, load_tokenizer
    from tinybert.training.evaluate import model_inputs, to_tensors

    model = load_model("bert", str(work / "teacher"))
    batches = importance.task_batches(data_for(work, examples=12, batch_size=12), load_tokenizer("bert", str(work / "teacher")))
    assert len(batches) == 1 and batches[0]["input_ids"].shape[0] == 12
    measured = importance.measure(model, batches, regression=False, states=[LAYERS])

    batch = batches[0]
    tensors = to_tensors(batch)
    captured = {}
    layer = model.bert.encoder.layers[1]

    def keep(kind, tensor):
        captured[kind] = tensor

    hooks = [layer.linear2.register_forward_pre_hook(lambda _l, inputs: keep("ffn", inputs[0])),
             layer.self_attn.v_proj.register_forward_post_hook(lambda _l, _i, out: keep("v", out))]
    model.eval()
    sequence, pooled = model.bert(**model_inputs(tensors))
    logits = model.classifier(pooled)  # BertForSequenceClassification in eval mode (dropout is the identity)
    for h in hooks:
        h.remove()
    for tensor in captured.values():
        tensor.retain_grads()
    F.cross_entropy(logits, tensors["labels"].reshape([-1, 1]), reduction="sum").backward()
    for kind in ("ffn", "v"):
        a, g = captured[kind].numpy(), captured[kind].grad.numpy()
        expected = np.abs((a * g).sum(axis=1)).mean(axis=0)  # per example over tokens, then the mean
        got = measured.neurons[1] if kind == "ffn" else measured.v[1]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-9)
    mask = batch["attention_mask"][:, :, None]
    hidden = sequence.numpy()
    np.testing.assert_allclose(measured.hidden, (np.abs(hidden) * mask).sum(axis=(0, 1)) / mask.sum(), rtol=1e-5)
    assert measured.examples == 12 and all(p.stop_gradient is False for p in model.parameters())


def train_tiny_teacher(directory, glue, steps=300):
    """A 2-layer BERT trained for real on the tiny SST-2 (the label is one sentiment word)."""
    import paddle
    import paddle.nn.functional as F
    from paddlenlp.transformers import BertForSequenceClassification

    from tinybert.data.features import collate, epoch_batches, featurize
    from tinybert.data.glue import load_split
    from tinybert.data.tasks import get_task
    from tinybert.models.loading import load_tokenizer
    from tinybert.training.evaluate import model_inputs, to_tensors

    tiny.make_bert(directory, layers=2, hidden=32, heads=4, intermediate=64, seed=11, dropout=0.0)
    model = BertForSequenceClassification.from_pretrained(directory)
    tokenizer = load_tokenizer("bert", directory)
    spec = get_task("SST-2")
    train = featurize(load_split(glue, spec, "train")[0].examples, tokenizer, 32, False)
    optimizer = paddle.optimizer.AdamW(learning_rate=2e-3, parameters=model.parameters())
    model.train()
    step, epoch = 0, 0
    while step < steps:
        for indices in epoch_batches(train.lengths, 32, seed=0, epoch=epoch):
            tensors = to_tensors(collate(train, indices, tokenizer.pad_token_id))
            loss = F.cross_entropy(model(**model_inputs(tensors)), tensors["labels"].reshape([-1, 1]))
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            step += 1
            if step == steps:
                break
        epoch += 1
    model.save_pretrained(directory)
    return model, tokenizer


def held_out_loss(model, tokenizer, source, selection, glue):
    """Mean cross-entropy on the dev set of the teacher cut to ``selection`` (its own classifier, cut)."""
    import paddle
    import paddle.nn.functional as F
    from paddlenlp.transformers import BertConfig, BertForSequenceClassification

    from tinybert.data.features import collate, featurize
    from tinybert.data.glue import load_split
    from tinybert.data.tasks import get_task
    from tinybert.training.evaluate import model_inputs, to_tensors

    config = BertConfig(**{**model.config.to_dict(), "hidden_size": selection.hidden_size,
                           "intermediate_size": selection.intermediate_size})
    cut = BertForSequenceClassification(config)
    state = {"bert." + k: v for k, v in width.slice_encoder(source, [0, 1], selection).items()}
    state.update(width.slice_classifier({k: v.numpy() for k, v in model.state_dict().items()
                                         if k.startswith("classifier.")}, selection))
    cut.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
    cut.eval()
    dev = featurize(load_split(glue, get_task("SST-2"), "dev")[0].examples, tokenizer, 32, False)
    with paddle.no_grad():
        tensors = to_tensors(collate(dev, list(range(len(dev))), tokenizer.pad_token_id))
        return float(F.cross_entropy(cut(**model_inputs(tensors)), tensors["labels"].reshape([-1, 1])))


def test_importance_beats_random_selection_of_the_same_shape_on_a_trained_model(tmp_path):
    tiny.write_task(str(tmp_path / "glue"), "SST-2", n_train=400, n_dev=200, seed=3)
    glue = str(tmp_path / "glue")
    model, tokenizer = train_tiny_teacher(str(tmp_path / "teacher"), glue)
    source = {k[len("bert."):]: v.numpy() for k, v in model.state_dict().items() if k.startswith("bert.")}
    full = held_out_loss(model, tokenizer, source, width.full_selection(32, 64, 2, 4), glue)
    assert full < 0.2  # the teacher learned the task

    scores = importance.measure(model, importance.task_batches(
        importance.ImportanceData("SST-2", glue, max_seq_length=32, examples=400), tokenizer), False, [0, 1, 2])
    shape = dict(heads=4, hidden_size=16, intermediate_size=32)
    chosen = width.select(scores.hidden, scores.qk, scores.v, scores.neurons, **shape)
    by_importance = held_out_loss(model, tokenizer, source, chosen, glue)
    at_random = [held_out_loss(model, tokenizer, source, width.random_selection(32, 64, 2, seed=seed, **shape), glue)
                 for seed in range(5)]
    print(f"held-out loss: teacher {full:.3f}, importance {by_importance:.3f}, random {np.round(at_random, 3)}")
    assert by_importance < min(at_random)


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize("argv, message", [
    (["--num_layers", "2", "--hidden_size", "30"], "not a multiple of the source's 4 attention heads"),
    (["--num_layers", "2", "--hidden_size", "64"], "--hidden_size 64 is larger than the source's 32"),
    (["--num_layers", "2", "--intermediate_size", "128"], "--intermediate_size 128 is larger than the source's 64"),
    (["--num_layers", "4"], "--num_layers 4: choose 1 to 3"),
    (["--num_layers", "2", "--hidden_size", "16"], "give --task_name"),
    (["--num_layers", "2", "--hidden_size", "16", "--task_name", "MNLI"], "classifies into 2 labels but MNLI has 3"),
])
def test_bad_shapes_are_one_line_errors(work, tmp_path, capsys, argv, message):
    script = load_script("build_student")
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--source", str(work / "teacher"), "--output_dir", str(tmp_path / "s"),
                     "--glue_dir", str(work / "glue")] + argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not os.path.exists(tmp_path / "s")


def test_a_teacher_without_a_classifier_is_told_to_fine_tune_first(work, tmp_path, capsys):
    from paddlenlp.transformers import BertModel

    BertModel.from_pretrained(str(work / "teacher")).save_pretrained(str(tmp_path / "bare"))
    tiny.write_vocab(str(tmp_path / "bare"))
    script = load_script("build_student")
    with pytest.raises(SystemExit):
        script.main(["--source", str(tmp_path / "bare"), "--output_dir", str(tmp_path / "s"), "--num_layers", "2",
                     "--hidden_size", "16", "--task_name", "SST-2", "--glue_dir", str(work / "glue")])
    err = capsys.readouterr().err
    assert "has no classifier" in err and "fine-tune it first (finetune_teacher.py" in err and err.count("\n") == 1
    assert not os.path.exists(tmp_path / "s")


def test_a_data_file_that_does_not_match_the_task_names_its_line(work, tmp_path, capsys):
    tiny.write_task(str(tmp_path / "glue"), "MRPC", n_train=8, n_dev=4)
    os.makedirs(tmp_path / "glue" / "SST-2")
    os.replace(tmp_path / "glue" / "MRPC" / "train.tsv", tmp_path / "glue" / "SST-2" / "train.tsv")
    script = load_script("build_student")
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--source", str(work / "teacher"), "--output_dir", str(tmp_path / "s"), "--num_layers", "2",
                     "--hidden_size", "16", "--task_name", "SST-2", "--glue_dir", str(tmp_path / "glue")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert os.path.join("SST-2", "train.tsv:2:") in err and "is not one of 0, 1" in err
    assert not os.path.exists(tmp_path / "s")


def test_cli_reports_the_width_and_the_criterion(work, tmp_path, capsys):
    script = load_script("build_student")
    script.main(["--source", str(work / "teacher"), "--output_dir", str(tmp_path / "s"), "--num_layers", "1",
                 "--hidden_size", "8", "--task_name", "SST-2", "--glue_dir", str(work / "glue"),
                 "--max_seq_length", "32", "--importance_examples", "10"])
    out = capsys.readouterr().out
    assert "hidden 8 of 32, intermediate 16 of 64 (importance" in out
    assert json.load(open(tmp_path / "s" / sb.RECORD_FILE))["importance_examples"] == 10


def test_random_selection_has_the_shape_and_keeps_heads_apart():
    selection = width.random_selection(32, 64, 2, heads=4, hidden_size=16, intermediate_size=24, seed=3)
    assert selection.hidden_size == 16 and selection.intermediate_size == 24
    for dims in selection.qk + selection.v:
        assert [int(i) // 8 for i in dims] == sorted([0, 1, 2, 3] * 4)
