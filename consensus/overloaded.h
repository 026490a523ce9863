// Overloaded: a set of lambdas as one visitor for std::visit over the
// message and record variants (consensus/ and the simulator share it).
#pragma once

namespace coworker::consensus {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace coworker::consensus
