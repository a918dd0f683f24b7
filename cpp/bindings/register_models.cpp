#include "ahpsim/models.hpp"

#include "bindings.hpp"

namespace py = pybind11;

void register_models(py::module_& m) {
  py::enum_<ahpsim::ModelKind>(m, "ModelKind")
      .value("LIF", ahpsim::ModelKind::LIF)
      .value("ALIF", ahpsim::ModelKind::ALIF)
      .value("AHP", ahpsim::ModelKind::AHP)
      .value("Readout", ahpsim::ModelKind::Readout);
  py::enum_<ahpsim::ResetMode>(m, "ResetMode")
      .value("Subtract", ahpsim::ResetMode::Subtract)
      .value("Zero", ahpsim::ResetMode::Zero);
  py::enum_<ahpsim::RefractoryMode>(m, "RefractoryMode")
      .value("Block", ahpsim::RefractoryMode::Block)
      .value("Clamp", ahpsim::RefractoryMode::Clamp);
  m.def("decay_of", &ahpsim::decay_of, py::arg("tau"), py::arg("dt"),
        "exp(-dt / tau) in double precision (0 for tau == 0), as the kernel computes decays");
}
