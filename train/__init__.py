"""Training generators with the objectives of `divergences`: one table of objectives, pure steps,
the training loop and command, run comparison; composes `divergences` and `divergences.models`.

`import divergences.train` stays light: orbax, matplotlib and scikit-learn are
imported only by the functions that need them.

Importing it has no process-wide side effect: the single BLAS thread that the
linear dual GAN's CPU factorisations want is scoped to the training loop
(:func:`divergences.train._blas.single_blas_thread`).
"""

from divergences.train._config import TrainConfig as TrainConfig
from divergences.train._config import objective_defaults as objective_defaults
from divergences.train._config import resolve_config as resolve_config
from divergences.train._config import validate_config as validate_config
from divergences.train._data import DATASETS as DATASETS
from divergences.train._data import Dataset as Dataset
from divergences.train._data import dataset_from_array as dataset_from_array
from divergences.train._data import load_dataset as load_dataset
from divergences.train._objectives import OBJECTIVES as OBJECTIVES
from divergences.train._objectives import CriticInputs as CriticInputs
from divergences.train._objectives import GeneratorInputs as GeneratorInputs
from divergences.train._objectives import Objective as Objective
from divergences.train._objectives import get_objective as get_objective
from divergences.train._objectives import register as register
from divergences.train._parallel import initialize_distributed as initialize_distributed
from divergences.train._parallel import make_mesh as make_mesh
from divergences.train._run import TrainingDiverged as TrainingDiverged
from divergences.train._run import evaluation_key as evaluation_key
from divergences.train._run import fit as fit
from divergences.train._run import load_generator as load_generator
from divergences.train._run import run as run
from divergences.train._steps import CriticState as CriticState
from divergences.train._steps import GeneratorState as GeneratorState
from divergences.train._steps import TrainState as TrainState
from divergences.train._steps import TrainStep as TrainStep
from divergences.train._steps import critic_update as critic_update
from divergences.train._steps import generator_update as generator_update
from divergences.train._steps import init_state as init_state
from divergences.train._steps import make_multi_step as make_multi_step
from divergences.train._steps import make_train_step as make_train_step
from divergences.train._steps import multi_step as multi_step
from divergences.train._steps import train_step as train_step
