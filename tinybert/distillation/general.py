"""General distillation: TinyBERT's first stage, on unlabeled text (docs/math.md#general-distillation).

A student of any shape learns the teacher's embeddings, hidden states and pre-softmax
attention scores on a plain-text corpus, with exactly the loss of task-distillation stage 1
(``distill.intermediate_objective``: the computed layer map, masked MSE, per-layer
projections). The result is a TinyBERT checkpoint that task distillation starts from; without
it a user with a teacher that has no released general TinyBERT can only cut layers out of the
teacher, which keeps its width (and most of its cost).

The corpus is streamed (``tinybert.data.corpus``): packed into sequences while it is read, tokenized
in a background worker, never held in memory, and resumable at the exact batch. Under several
processes each tokenizes only its own share of the documents.
"""
from __future__ import annotations

from ..data.batches import CorpusBatches
from ..data.corpus import PackedCorpus, require_real_tokens
from ..errors import UserError, require
from ..models.internals import hidden_size, num_heads, num_layers
from ..models.loading import (
    base_model,
    check_source,
    load_model_and_keys,
    load_tokenizer,
)
from ..models.student import (
    PER_LAYER,
    DistillationStudent,
    freeze_unused,
    record_projection,
)
from ..training.checkpoint import save_pretrained_atomically
from ..training.guard import check_stage_keeps_inputs
from ..training.stage import DataSource, Job, Stage, run_stage
from . import mapping
from .task import check_attention_compatible, intermediate_objective

GENERAL = Stage("general", checkpoint_name="checkpoint-last-general", best_name="general_model",
                higher_is_better=False, score_name="loss")
SHAPE_FLAGS = ("student_num_layers", "student_hidden_size", "student_intermediate_size", "student_num_heads")
TINYBERT4 = {"student_num_layers": 4, "student_hidden_size": 312, "student_intermediate_size": 1200}


def student_config(settings, teacher):
    """A TinyBERT config of the requested shape, sharing the teacher's vocabulary and positions."""
    from paddlenlp.transformers import TinyBertConfig

    shape = {name: getattr(settings, name) if getattr(settings, name) is not None else TINYBERT4.get(name) for name in SHAPE_FLAGS}
    heads = shape["student_num_heads"] or num_heads(teacher)
    width, layers, intermediate = shape["student_hidden_size"], shape["student_num_layers"], shape["student_intermediate_size"]
    require(layers > 0 and width > 0 and intermediate > 0,
            f"--student_num_layers, --student_hidden_size and --student_intermediate_size must be positive "
            f"(got {layers}, {width}, {intermediate})")
    require(width % heads == 0,
            f"--student_hidden_size {width} is not divisible by {heads} attention heads; pick a width that is "
            f"(e.g. {heads * max(1, round(width / heads))})")
    require(heads == num_heads(teacher),
            f"--student_num_heads {heads} differs from the teacher's {num_heads(teacher)}; attention distillation "
            f"needs equal head counts (TinyBERT-4L uses 12 heads of 26 dims)")
    config = base_model(teacher).config
    return TinyBertConfig(vocab_size=config.vocab_size, hidden_size=width, num_hidden_layers=layers,
                          num_attention_heads=heads, intermediate_size=intermediate,
                          max_position_embeddings=config.max_position_embeddings,
                          type_vocab_size=config.type_vocab_size, hidden_act=config.hidden_act,
                          pad_token_id=config.pad_token_id, fit_size=hidden_size(teacher), num_labels=2)


def load_student(settings, teacher):
    """An existing TinyBERT checkpoint (projections to the teacher's width), or a fresh one of a shape."""
    if settings.student_model_name_or_path:
        given = [f"--{name}" for name in SHAPE_FLAGS if getattr(settings, name) is not None]
        if given:
            raise UserError(f"give either --student_model_name_or_path or a shape ({', '.join(given)}), not both")
        student, _ = load_model_and_keys("tinybert", settings.student_model_name_or_path, "--student_model_name_or_path",
                                         fit_size=hidden_size(teacher))
        return student
    from paddlenlp.transformers import TinyBertForSequenceClassification

    return TinyBertForSequenceClassification(student_config(settings, teacher))


def build_job(settings, dist) -> Job:
    check_source(settings.teacher_path, settings.teacher_model_type, "--teacher_path")
    tokenizer = load_tokenizer(settings.teacher_model_type, settings.teacher_path, "--teacher_path")
    corpus = PackedCorpus(settings.corpus, tokenizer, max_seq_length=settings.max_seq_length, batch_size=settings.batch_size,
                          seed=settings.seed, rank=dist.rank, world_size=dist.world_size)
    # a corpus of [UNK]s, of one-word documents or too small for every rank is refused before the models load
    dist.check_everywhere(lambda: (require_real_tokens(corpus), corpus.require_one_batch()))
    teacher, _ = load_model_and_keys(settings.teacher_model_type, settings.teacher_path, "--teacher_path")
    teacher.eval()
    student = load_student(settings, teacher)
    check_attention_compatible(teacher, student)
    layer_map = mapping.build(num_layers(teacher), num_layers(student), settings.layer_map)
    record_projection(student, PER_LAYER)
    trained = DistillationStudent(student, PER_LAYER)
    freeze_unused(trained, "intermediate")
    loss = intermediate_objective(teacher, layer_map, (settings.hidden_weight, settings.attention_weight))

    def objective(model, batch):
        import paddle

        return {**loss(model, batch), "tokens": paddle.to_tensor(float(batch["attention_mask"].sum()))}

    if dist.is_main:
        print(f"general distillation: teacher {settings.teacher_path} ({num_layers(teacher)} x {hidden_size(teacher)}) "
              f"-> student {num_layers(student)} x {hidden_size(student)}, "
              f"{sum(int(p.size) for p in student.parameters()):,} parameters\n"
              f"layer map: {layer_map.describe()}\ncorpus: {len(corpus.files)} file(s), {corpus.files[0]}"
              f"{' ...' if len(corpus.files) > 1 else ''}", flush=True)
    data = DataSource(CorpusBatches(corpus, settings.data_worker, agree=dist.smallest), {"corpus": corpus.fingerprint},
                      {"corpus_files": len(corpus.files)})
    return Job(model=trained, checkpointed={"student": student}, objective=objective, data=data, evaluate=None,
               save_best=lambda path: save_pretrained_atomically(path, student, tokenizer),
               describe={"layer_map": layer_map.describe(), "projections": PER_LAYER,
                         "student_layers": num_layers(student), "student_hidden_size": hidden_size(student)})


def run(settings) -> dict:
    check_stage_keeps_inputs(settings, GENERAL)
    return run_stage(settings, GENERAL, lambda dist: build_job(settings, dist))
