"""PyTorch surrogate-gradient training for ahpsim networks (optional extra: ``pip install ahpsim[torch]``).

The networks trained here follow ``docs/equations.md`` bit for bit (same float32 evaluation order as the
C++ kernel) and export to the kernel with :func:`to_network` (and back with :func:`from_network`).
See ``docs/training.md``.
"""

from .export import from_network, from_nir, run_network, to_network, to_nir
from .functional import (AHPParams, AHPState, ALIFParams, ALIFState, FastSigmoid, Gaussian, LayerConstants,
                         LIFParams, LIFState, ReadoutParams, ReadoutState, Surrogate, Triangle, ahp_step,
                         alif_step, decay, leaky_scan, lif_step, readout_step, recurrent_layer, spike_fn)
from .loihi import LOIHI_VTH_MANT, loihi_aware
from .losses import (accuracy, firing_rate_regularizer, readout_cross_entropy, readout_logits, readout_window,
                     spike_rate)
from .modules import RNNOutput, SpikingRNN
from .relational import (BabiBatch, IFHead, KernelRelationalNetwork, RelationalNetwork, RelNetOutput, decode_answers,
                         relu_activations)
from .rewiring import DeepR
from .tasks import TASKS, Task, build_model, delayed_classification, make_task
from .trainer import (SequenceData, TrainConfig, Trainer, batch_objective, evaluate, init_from_checkpoint,
                      load_checkpoint, load_model, perturb_weights_, save_checkpoint)

__all__ = [
    # surrogate gradients and step functions
    "Surrogate", "Triangle", "FastSigmoid", "Gaussian", "decay", "spike_fn",
    "LIFState", "AHPState", "ALIFState", "ReadoutState", "LIFParams", "AHPParams", "ALIFParams", "ReadoutParams",
    "lif_step", "ahp_step", "alif_step", "readout_step", "LayerConstants", "recurrent_layer", "leaky_scan",
    # modules
    "SpikingRNN", "RNNOutput",
    # the bAbI Relational Network
    "RelationalNetwork", "RelNetOutput", "BabiBatch", "KernelRelationalNetwork", "IFHead", "relu_activations",
    "decode_answers",
    # losses
    "readout_window", "readout_logits", "readout_cross_entropy", "firing_rate_regularizer", "spike_rate", "accuracy",
    # training
    "SequenceData", "TrainConfig", "Trainer", "batch_objective", "evaluate", "save_checkpoint", "load_checkpoint", "load_model",
    "init_from_checkpoint", "perturb_weights_", "DeepR",
    # tasks
    "Task", "TASKS", "make_task", "build_model", "delayed_classification",
    # export
    "to_network", "from_network", "run_network", "to_nir", "from_nir",
    # Loihi-aware training
    "loihi_aware", "LOIHI_VTH_MANT",
]
