// Counts heap allocations made through operator new in this test binary (replaced in
// allocation_counter.cpp), to check that the pipeline allocates nothing in steady state.
#pragma once

#include <cstdint>

namespace callgate::audio::testing {

std::uint64_t AllocationCount();

}  // namespace callgate::audio::testing
