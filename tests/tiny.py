"""Tiny offline fixtures: GLUE-format files with the real quirks, and tiny BERT models.

Sentences are built from a small vocabulary in which a few sentiment/relation words decide
the label, so a tiny model can actually learn the tasks in a few steps.
"""
from __future__ import annotations

import os
import random

POSITIVE = ["good", "great", "fine", "happy", "nice"]
NEGATIVE = ["bad", "awful", "poor", "sad", "dull"]
NEUTRAL = ["the", "movie", "film", "plot", "actor", "story", "was", "is", "very", "quite", "a", "this", "it",
           "and", "but", "not", "really", "book", "cat", "dog", "ran", "sat", "on", "mat", "he", "she", "they"]
PIECES = ["un", "##believ", "##able", "##s", "##ing", "'", "\"", ".", ",", "?", "!"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIAL + POSITIVE + NEGATIVE + NEUTRAL + PIECES


def write_vocab(directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "vocab.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(VOCAB) + "\n")
    return path


def sentence(rng: random.Random, label: int, length: int = None) -> str:
    length = length or rng.randint(3, 12)
    words = [rng.choice(NEUTRAL) for _ in range(length)]
    words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label else NEGATIVE))
    return " ".join(words)


def _rows(task: str, count: int, rng: random.Random, dev: bool):
    """Yield one TSV row (list of columns) per example in the task's real layout."""
    for i in range(count):
        label = rng.randint(0, 1)
        s1, s2 = sentence(rng, label), sentence(rng, label)
        if task == "CoLA":
            yield ["gj04", str(label), "" if label else "*", s1]
        elif task == "SST-2":
            yield [s1 + (' "quoted"' if i == 0 else ""), str(label)]
        elif task == "MRPC":
            yield [str(label), str(1000 + i), str(2000 + i), s1, s2]
        elif task == "STS-B":
            score = f"{rng.uniform(0, 5):.3f}" if i else "5.000"
            yield ["main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none", "x", s1, s2, score]
        elif task == "QQP":
            yield [str(i), str(2 * i), str(2 * i + 1), s1 + " ?", s2 + " ?", str(label)]
        elif task == "MNLI":
            names = ["contradiction", "entailment", "neutral"]
            gold = names[rng.randint(0, 2)]
            parse = ["( x )", "( y )", "(ROOT x)", "(ROOT y)"]
            extra = [gold] * 5 if dev else [gold]
            yield [str(i), str(i), f"{i}n", "fiction"] + parse + [s1, s2] + extra
        elif task in ("QNLI", "RTE"):
            yield [str(i), s1, s2, "entailment" if label else "not_entailment"]
        elif task == "WNLI":
            yield [str(i), s1, s2, str(label)]


HEADERS = {
    "SST-2": ["sentence", "label"],
    "MRPC": ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
    "STS-B": ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2", "score"],
    "QQP": ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
    "MNLI": ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
             "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"],
    "QNLI": ["index", "question", "sentence", "label"],
    "RTE": ["index", "sentence1", "sentence2", "label"],
    "WNLI": ["index", "sentence1", "sentence2", "label"],
}
DEV_FILES = {"MNLI": ["dev_matched.tsv", "dev_mismatched.tsv"]}
ALL_TASKS = ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"]


def write_task(glue_dir: str, task: str, n_train: int = 40, n_dev: int = 16, seed: int = 0,
               qqp_bad_row: bool = False, final_newline: bool = True) -> str:
    """Write <glue_dir>/<task>/ train and dev files; return the task directory."""
    rng = random.Random(f"{task}-{seed}")
    directory = os.path.join(glue_dir, task)
    os.makedirs(directory, exist_ok=True)
    for name, count, dev in [("train.tsv", n_train, False)] + [(f, n_dev, True) for f in DEV_FILES.get(task, ["dev.tsv"])]:
        lines = []
        if task in HEADERS:
            header = list(HEADERS[task])
            if task == "MNLI" and dev:
                header = header[:10] + ["label1", "label2", "label3", "label4", "label5", "gold_label"]
            lines.append("\t".join(header))
        lines += ["\t".join(row) for row in _rows(task, count, rng, dev)]
        if task == "QQP" and qqp_bad_row and not dev:
            lines.insert(3, "363362\t84783\t84784\tHow do I?")  # a real quirk: missing fields
        text = "\n".join(lines) + ("\n" if final_newline else "")
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    return directory


def write_all_tasks(glue_dir: str, **kwargs) -> None:
    for task in ALL_TASKS:
        write_task(glue_dir, task, **kwargs)


def make_bert(directory: str, num_labels: int = 2, hidden: int = 32, layers: int = 2, heads: int = 2,
              intermediate: int = 64, seed: int = 0, model_type: str = "bert", fit_size: int = None,
              dropout: float = 0.1, initializer_range: float = 0.02):
    """Save a randomly initialised tiny BERT/TinyBERT classifier + tokenizer to ``directory``.

    A larger ``initializer_range`` than BERT's 0.02 gives outputs that depend on the input
    strongly (at 0.02 a tiny random model gives every sentence nearly the same logits)."""
    import paddle
    from paddlenlp.transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizer,
        TinyBertConfig,
        TinyBertForSequenceClassification,
    )

    paddle.seed(seed)
    common = dict(vocab_size=len(VOCAB), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=intermediate, max_position_embeddings=128, type_vocab_size=2,
                  num_labels=num_labels, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                  initializer_range=initializer_range)
    if model_type == "bert":
        model = BertForSequenceClassification(BertConfig(**common))
    else:
        model = TinyBertForSequenceClassification(TinyBertConfig(fit_size=fit_size or hidden, **common))
    os.makedirs(directory, exist_ok=True)
    vocab = write_vocab(directory)
    tokenizer = BertTokenizer(vocab, do_lower_case=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def make_bert_mlm(directory: str, hidden: int = 32, layers: int = 2, heads: int = 2, intermediate: int = 64,
                  seed: int = 0, max_position: int = 128):
    """Save a randomly initialised tiny BERT *with* its masked-LM head + tokenizer (augmentation)."""
    import paddle
    from paddlenlp.transformers import BertConfig, BertForMaskedLM, BertTokenizer

    paddle.seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate,
                        max_position_embeddings=max_position, type_vocab_size=2)
    model = BertForMaskedLM(config)
    os.makedirs(directory, exist_ok=True)
    tokenizer = BertTokenizer(write_vocab(directory), do_lower_case=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


GLOVE_EXTRA = ["unbelievable", "unbelievably", "incredible", "amazing", "terrible", "wonderful"]


def write_glove(path: str, words=None, dim: int = 8, seed: int = 0, zero_words=()) -> str:
    """Write a small GloVe text file (``word v1 ... vd``) of random vectors; ``zero_words`` get 0s."""
    rng = random.Random(seed)
    words = list(words) if words is not None else [w for w in VOCAB if w.isalpha()] + GLOVE_EXTRA
    with open(path, "w", encoding="utf-8") as handle:
        for word in words:
            values = [0.0] * dim if word in zero_words else [rng.gauss(0, 1) for _ in range(dim)]
            handle.write(word + " " + " ".join(f"{v:.5f}" for v in values) + "\n")
    return path


# ------------------------------------------------------------------ Chinese: CLUE files, -zh and ERNIE models
# One character per token, as BERT's basic tokenizer splits CJK text; a few characters decide the label.
ZH_POSITIVE = list("好棒赞妙喜")
ZH_NEGATIVE = list("坏差烂糟厌")
ZH_NEUTRAL = list("这部电影的故事很真是我们他她它书猫狗今天看了和但不一个小")
ZH_PUNCTUATION = ["_", "[", "]", "，", "。", "？"]
VOCAB_ZH = SPECIAL + ZH_POSITIVE + ZH_NEGATIVE + ZH_NEUTRAL + ZH_PUNCTUATION
CLUE_TASKS = ["AFQMC", "TNEWS", "IFLYTEK", "OCNLI", "CMNLI", "CLUEWSC2020", "CSL"]


def sentence_zh(rng: random.Random, label: int, length: int = None) -> str:
    """A Chinese sentence (no spaces, as CLUE's text) whose one sentiment character gives the label."""
    chars = [rng.choice(ZH_NEUTRAL) for _ in range(length or rng.randint(3, 12))]
    chars.insert(rng.randint(0, len(chars)), rng.choice(ZH_POSITIVE if label else ZH_NEGATIVE))
    return "".join(chars)


def _clue_row(task: str, i: int, rng: random.Random, labels) -> dict:
    label = rng.randint(0, 1)
    s1, s2 = sentence_zh(rng, label), sentence_zh(rng, label)
    if task in ("TNEWS", "IFLYTEK"):
        code = labels[rng.randrange(len(labels)) if i % 3 == 0 else label]
        return {"label": code, "label_desc": f"news_{code}", "sentence": s1, "keywords": ""}
    if task in ("OCNLI", "CMNLI"):
        return {"sentence1": s1, "sentence2": s2, "label": labels[rng.randrange(3)], "genre": "news", "id": i}
    if task == "CLUEWSC2020":
        head, middle, tail = sentence_zh(rng, label, 3), sentence_zh(rng, label, 2), sentence_zh(rng, label, 2)
        noun, pronoun = "小猫", "它"
        text = head + noun + middle + pronoun + tail if i % 2 else head + pronoun + middle + noun + tail
        first = len(head)
        noun_at = first if i % 2 else first + len(pronoun) + len(middle)
        pronoun_at = first + len(noun) + len(middle) if i % 2 else first
        return {"target": {"span2_index": pronoun_at, "span1_index": noun_at, "span1_text": noun,
                           "span2_text": pronoun}, "idx": i, "label": "true" if label else "false", "text": text}
    if task == "CSL":
        return {"id": i, "abst": s1 + "。" + s2, "keyword": [sentence_zh(rng, label, 2), sentence_zh(rng, label, 1)],
                "label": str(label)}
    return {"sentence1": s1, "sentence2": s2, "label": str(label)}  # AFQMC


def write_clue_task(glue_dir: str, task: str, n_train: int = 40, n_dev: int = 16, seed: int = 0,
                    unlabelled: int = 2) -> str:
    """Write <glue_dir>/<task>/train.json and dev.json (JSON lines, as published); return the directory.

    OCNLI/CMNLI files also get ``unlabelled`` rows labelled ``-`` (the published files have them).
    """
    import json

    from tinybert.data.tasks import get_task

    labels = get_task(task).labels
    rng = random.Random(f"{task}-{seed}")
    directory = os.path.join(glue_dir, task)
    os.makedirs(directory, exist_ok=True)
    for name, count in (("train.json", n_train), ("dev.json", n_dev)):
        rows = [_clue_row(task, i, rng, labels) for i in range(count)]
        if task in ("OCNLI", "CMNLI"):
            for k in range(unlabelled):
                rows.insert(1 + 3 * k, dict(rows[0], label="-"))
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return directory


def _save_with_tokenizer(model, directory: str, vocab, tokenizer_class: str = "BertTokenizer"):
    import paddlenlp.transformers as transformers

    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "vocab.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(vocab) + "\n")
    model.save_pretrained(directory)
    getattr(transformers, tokenizer_class)(path, do_lower_case=True).save_pretrained(directory)
    return directory


def make_zh(directory: str, model_type: str = "bert", num_labels: int = 2, hidden: int = 32, layers: int = 2,
            heads: int = 2, intermediate: int = 64, seed: int = 0, fit_size: int = None, dropout: float = 0.0,
            use_task_id: bool = True):
    """Save a tiny Chinese classifier (``bert``, ``tinybert`` or ``ernie``) with its tokenizer.

    ``ernie`` is shaped like ERNIE 3.0 (task-type embeddings, ``use_task_id``) and saved with
    ``ErnieTokenizer``; the others like ``bert-base-chinese`` / ``tinybert-4l-312d-zh``.
    """
    import paddle
    import paddlenlp.transformers as transformers

    paddle.seed(seed)
    common = dict(vocab_size=len(VOCAB_ZH), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=intermediate, max_position_embeddings=128, type_vocab_size=2,
                  num_labels=num_labels, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    if model_type == "ernie":
        config = transformers.ErnieConfig(use_task_id=use_task_id, task_type_vocab_size=3, **common)
        return _save_with_tokenizer(transformers.ErnieForSequenceClassification(config), directory, VOCAB_ZH,
                                    "ErnieTokenizer")
    if model_type == "tinybert":
        model = transformers.TinyBertForSequenceClassification(
            transformers.TinyBertConfig(fit_size=fit_size or hidden, **common))
    else:
        model = transformers.BertForSequenceClassification(transformers.BertConfig(**common))
    return _save_with_tokenizer(model, directory, VOCAB_ZH)
