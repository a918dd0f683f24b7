"""Training for the Loihi integer engine: :func:`loihi_aware` makes a :class:`SpikingRNN` compute in
float what ``ahpsim.loihi.quantize(..., vth_mant=...)`` will compute in integers, up to the engine's
rounding of decays, so that a network trained (or fine-tuned) this way keeps its accuracy on Loihi.
"""

from __future__ import annotations

import numpy as np

from .modules import SpikingRNN

__all__ = ["loihi_aware", "LOIHI_VTH_MANT"]

# The threshold mantissa of the paper's authors' sMNIST network: threshold 508 * 2**6, leaving the
# 24-bit voltage +-258 thresholds of range (strongly inhibited neurons go far below zero).
LOIHI_VTH_MANT = 508


def _realized_tau(tau: np.ndarray, dt: float) -> np.ndarray:
    from ..loihi.quantize import tau_from_decay, decay_from_tau

    tau = np.asarray(tau, np.float64)
    d = np.minimum(decay_from_tau(tau, dt), 4095)
    return np.where(tau > 0, tau_from_decay(d, dt), tau)


def _realized_beta(beta: np.ndarray, scale: np.ndarray) -> np.ndarray:
    from ..loihi.quantize import split_weights

    out = np.array(beta, np.float64)
    for b, s in set(zip(out.tolist(), np.asarray(scale, np.float64).tolist())):
        if b == 0.0:
            continue
        m, e = split_weights(np.array([-b * s]))
        out[(out == b) & (scale == s)] = -float(m[0]) * 2.0 ** (6 + e) / s
    return out


def loihi_aware(model: SpikingRNN, vth_mant: int = LOIHI_VTH_MANT) -> SpikingRNN:
    """Sets ``model`` (in place) to the values the integer engine realizes: time constants from the
    12-bit decays, AHP / ALIF strengths from their 8-bit synapse, and the weight grid of
    :meth:`SpikingRNN.set_loihi_grid` (straight-through gradients). Train or fine-tune after this,
    then ``ahpsim.loihi.quantize(to_network(model), vth_mant=vth_mant)``. Returns ``model``."""
    model.set_loihi_grid(vth_mant)
    dt = model.dt
    model.tau_m = _realized_tau(model.tau_m, dt)
    model.tau_ahp = _realized_tau(model.tau_ahp, dt)
    model.tau_a = _realized_tau(model.tau_a, dt)
    model.tau_out = _realized_tau(model.tau_out, dt)
    scale = vth_mant * 64.0 / np.asarray(model.v_th_value, np.float64)
    model.beta_ahp = _realized_beta(model.beta_ahp, scale)
    model.beta_alif = _realized_beta(model.beta_alif, scale)
    return model
