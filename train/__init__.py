"""Compiled training steps, data and the training command; composes `divergences` and `models`.

`import train` stays light: orbax, matplotlib and scikit-learn are imported
only by the functions that need them.

Importing it has no process-wide side effect: the single BLAS thread that the
linear dual GAN's CPU factorisations want is scoped to the training loop
(:func:`divergences.train._blas.single_blas_thread`).
"""

from divergences.train._config import OBJECTIVES as OBJECTIVES
from divergences.train._config import TrainConfig as TrainConfig
from divergences.train._config import objective_defaults as objective_defaults
from divergences.train._config import resolve_config as resolve_config
from divergences.train._data import DATASETS as DATASETS
from divergences.train._data import Dataset as Dataset
from divergences.train._data import load_dataset as load_dataset
from divergences.train._parallel import initialize_distributed as initialize_distributed
from divergences.train._parallel import make_mesh as make_mesh
from divergences.train._run import TrainingDiverged as TrainingDiverged
from divergences.train._run import run as run
from divergences.train._steps import TrainState as TrainState
from divergences.train._steps import TrainStep as TrainStep
from divergences.train._steps import make_multi_step as make_multi_step
from divergences.train._steps import make_train_step as make_train_step
