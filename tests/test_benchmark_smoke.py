"""scripts/benchmark.py runs (tiny shapes) and reports every figure issue 6 asks for.

No timing is asserted: the figures are for the closing note, the structure is tested here.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_benchmark_prints_json_with_every_ratio():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "benchmark.py"), "--quick",
                             "--skip_cpu_settings"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    for stage in ("finetune", "intermediate", "prediction"):
        entry = report["training"][stage]
        assert entry["ours"]["examples_per_s"] > 0 and entry["reference_style"]["examples_per_s"] > 0
        assert "speedup" in entry  # its value is the script's own ratio of the two figures: nothing to check
    assert report["flops"]["matmul_peak_gflops"] > 0 and 0 < report["flops"]["fraction_of_peak"]
    general = report["general_distillation"]
    assert general["tokens_per_s"] > 0 and 0 <= general["data_wait_share"] <= 1 and general["steps_timed"] > 0
    inference = report["inference"]
    assert inference["teacher"]["parameters"] > inference["student"]["parameters"]
    assert {"speedup_dygraph_batch1", "speedup_paddle_inference_batch32", "speedup_onnxruntime_int8_batch1",
            "student_int8_vs_teacher_dygraph_batch1", "student_int8_vs_student_onnx_fp32_batch1",
            "parameter_ratio", "targets"} <= set(inference)
    assert set(inference["latency"]["batch_sizes"]["1"]) == {f"{m}/{r}" for m in ("teacher", "student") for r in (
        "dygraph", "paddle_inference", "onnxruntime_fp32", "onnxruntime_int8")}
