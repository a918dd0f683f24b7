// Binding of the Loihi integer engine (cpp/include/ahpsim/loihi); filled in by the Loihi work.
#include "bindings.hpp"

void register_loihi(pybind11::module_& m) { (void)m; }
