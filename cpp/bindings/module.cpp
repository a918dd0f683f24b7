// ahpsim._core: the thin pybind11 layer over the C++ core library. Validation that needs Python
// context (argument names, dtypes) lives in the Python API; this layer converts and releases the GIL.
#include "bindings.hpp"

#ifndef AHPSIM_VERSION
#define AHPSIM_VERSION "0.0.0"
#endif

PYBIND11_MODULE(_core, m) {
  m.doc() = "ahpsim C++ kernel (event-driven float engine and Loihi integer engine)";
  m.attr("__version__") = AHPSIM_VERSION;
  register_models(m);
  register_network(m);
  register_loihi(m);
  register_training(m);
}
