"""Shared evaluation, computed by the product's own pieces in one or several processes.

Run alone (one process) or under ``python -m paddle.distributed.launch`` (several). It builds
stage 1's job exactly as ``task_distill.py`` does and calls the job's own ``evaluate`` (each
rank its share of the dev batches, gathered), then the stage-2 evaluation and the teacher's
logits of the training set (``predict_logits`` with the distribution). Rank 0 writes every
number to ``<out>`` so a test can compare one process with several, bit for bit.

    python eval_probe.py OUT.npz --teacher_path T --student_model_name_or_path S --glue_dir G --output_dir O ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinybert.runtime import prepare_process  # noqa: E402

prepare_process()

import numpy as np  # noqa: E402

import task_distill  # noqa: E402
from tinybert.data.tasks import get_task  # noqa: E402
from tinybert.distillation import task as distill  # noqa: E402
from tinybert.errors import run_cli  # noqa: E402
from tinybert.runtime import set_seed  # noqa: E402
from tinybert.training.distributed import Distribution  # noqa: E402
from tinybert.training.evaluate import predict_logits  # noqa: E402


def main():
    out = sys.argv[1]
    args = task_distill.parse_args(sys.argv[2:] + ["--task_name", "SST-2", "--device", "cpu", "--intermediate_distill"])
    dist = Distribution.start("cpu")
    set_seed(args.seed)
    spec = get_task("SST-2")
    job = distill.build_job(args, spec, True, dist)
    stage_one = job.evaluate()  # the job's own evaluation: dev intermediate loss
    models = distill.load_models(args, spec)
    data = distill.shared_task_data(args, spec, models.tokenizer, dist)
    pad = models.tokenizer.pad_token_id
    dev_logits = predict_logits(models.teacher, data.devs[0], args.eval_batch_size, pad, dist=dist)
    train_logits = predict_logits(models.teacher, data.train, args.eval_batch_size, pad, dist=dist)
    if dist.is_main:
        np.savez(out, dev_logits=dev_logits, train_logits=train_logits,
                 **{f"stage1_{name}": np.float64(value) for name, value in stage_one.items()})
    dist.barrier("process 0 to write the probe's output")


if __name__ == "__main__":
    run_cli(main)()  # under the launcher, leaves as the CLIs do (tinybert.errors.leave_launched)
