#pragma once
// MurmurHash3's 64-bit finalizer: spreads every input bit over the whole word.
// The hash tables keyed by addresses or FNV sums use it last, since addresses
// and short sums share most of their high bits.
#include <cstdint>

namespace connleak {

constexpr std::uint64_t mix_hash(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace connleak
