#pragma once
// GNU build ids (NT_GNU_BUILD_ID notes): the journal records each loaded
// object's, and the offline symbolizer refuses to name frames of a file on
// disk whose build id differs (a rebuilt binary would give wrong names).
#include <cstddef>
#include <string>
#include <vector>

namespace connleak::journal {

// Scans a PT_NOTE segment's bytes; copies the build id into `out` (at most
// `cap` bytes) and returns its length, 0 if there is none. No allocation, no
// system call: the shim calls it on mapped segments.
std::size_t find_build_id(const unsigned char* notes, std::size_t size, unsigned char* out,
                          std::size_t cap);
// The build id of the ELF file at `path`; empty when it has none or cannot be read.
std::vector<unsigned char> build_id_of_file(const std::string& path);
std::string hex_bytes(const std::vector<unsigned char>& bytes);

}  // namespace connleak::journal
