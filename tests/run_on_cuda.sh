#!/usr/bin/env bash
# The trial-reproducibility tests on a CUDA device: the training study runs on the GPU (model,
# dropout and CUDA generators), is killed mid-epoch and resumed. Run from the repository root
# on a machine with a GPU and the test requirements installed. Twice: with PyTorch's default
# kernels, then with deterministic algorithms.
set -uo pipefail
export PYTHONPATH="src:tests${PYTHONPATH:+:$PYTHONPATH}" OPTUNA_RESUME_TEST_DEVICE=cuda
python3 -c "import torch, optuna; print('torch', torch.__version__, 'optuna', optuna.__version__, torch.cuda.get_device_name())"
tests=(tests/test_training_resume.py tests/test_rng.py tests/test_training.py)
status=0
echo "== default CUDA kernels"
python3 -m pytest -p no:cacheprovider -p no:benchmark -q -n 4 "${tests[@]}" || status=1
echo "== torch.use_deterministic_algorithms(True)"
CUBLAS_WORKSPACE_CONFIG=:4096:8 OPTUNA_RESUME_TEST_DETERMINISTIC=1 \
    python3 -m pytest -p no:cacheprovider -p no:benchmark -q -n 4 "${tests[@]}" || status=1
echo "== what a checkpoint of a CUDA trial holds"
python3 - <<'PY' || status=1
import pathlib, tempfile
import training_driver
from optuna_resume._serialization import load_object
root = pathlib.Path(tempfile.mkdtemp()) / "cuda-study"
training_driver.run_phase(str(root), until=2)
state = load_object((root / "workspaces/trial-000001/training_state.pt").read_bytes())
print("generators saved with the training state:", sorted(state["rng"]))
print("CUDA generators:", len(state["rng"].get("cuda", [])))
PY
exit "$status"
