// Shared declarations of the thin binding layer (tier 2). Each concept registers itself.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <vector>

namespace ahpsim_py {
namespace py = pybind11;

// Hands a std::vector to numpy without copying: the array owns the moved vector.
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, heap->data(), owner);
}

}  // namespace ahpsim_py

void register_models(pybind11::module_& m);
void register_network(pybind11::module_& m);
void register_loihi(pybind11::module_& m);
void register_training(pybind11::module_& m);
