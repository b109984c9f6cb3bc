"""Compiled training steps, data and the training command; composes `divergences` and `models`.

`import train` stays light: orbax, matplotlib and scikit-learn are imported
only by the functions that need them.

Importing it sets ``OPENBLAS_NUM_THREADS=1`` unless already set: JAX's CPU
Cholesky (the linear-dual solver) runs in scipy's OpenBLAS, loaded at the
first factorisation, whose spinning threads fight XLA's own thread pool; on
a busy 2-core machine that made the linear-dual step 10-100x slower.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from train._config import OBJECTIVES as OBJECTIVES
from train._config import TrainConfig as TrainConfig
from train._config import objective_defaults as objective_defaults
from train._config import resolve_config as resolve_config
from train._data import DATASETS as DATASETS
from train._data import Dataset as Dataset
from train._data import load_dataset as load_dataset
from train._parallel import initialize_distributed as initialize_distributed
from train._parallel import make_mesh as make_mesh
from train._run import TrainingDiverged as TrainingDiverged
from train._run import run as run
from train._steps import TrainState as TrainState
from train._steps import TrainStep as TrainStep
from train._steps import make_multi_step as make_multi_step
from train._steps import make_train_step as make_train_step
