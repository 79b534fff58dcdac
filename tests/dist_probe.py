"""Gradients of one stage-2 step, computed by the product's own pieces, in one or several processes.

Run alone (one process) or under ``python -m paddle.distributed.launch`` (several). It builds
the stage-2 job exactly as ``task_distill.py`` does (``tinybert.distillation.task.build_job``), takes
this rank's first batch from ``TaskBatches``, wraps the student with
``Distribution.data_parallel`` and runs one forward and backward. Rank 0 writes every
trainable parameter's gradient to ``<out>``. Dropout is off (eval mode) so that the only
difference between runs is how the batch is split across processes.

    python dist_probe.py OUT.npz --teacher_path T --student_model_name_or_path S --glue_dir G --batch_size B \
        --output_dir O

Each run gets its own ``--output_dir`` (so its own token stores and teacher-logits cache): a
one-process reference reading the two-process run's cached logits would hide a wrong gather.
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


def main():
    out = sys.argv[1]
    args = task_distill.parse_args(sys.argv[2:] + ["--task_name", "SST-2", "--device", "cpu"])
    dist = Distribution.start("cpu")
    set_seed(args.seed)
    job = distill.build_job(args, get_task("SST-2"), False, dist)
    batches = job.data.batches  # --no_length_buckets: the first batches are consecutive examples
    model = dist.data_parallel(job.model)
    model.eval()  # no dropout: both runs see the same function
    batch = next(iter(batches.epoch(0)))
    job.objective(model, batch)["loss"].backward()
    indices = np.concatenate(dist.gather(batch["index"]))  # the examples of this step, all ranks
    gradients = {name: p.grad.numpy() for name, p in job.model.named_parameters() if not p.stop_gradient}
    if dist.is_main:
        np.savez(out, indices=indices, **gradients)
    dist.barrier("process 0 to write the gradients")


if __name__ == "__main__":
    run_cli(main)()  # under the launcher, leaves as the CLIs do (tinybert.errors.leave_launched)
