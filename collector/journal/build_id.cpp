#include "collector/journal/build_id.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <cstring>

namespace connleak::journal {

std::size_t find_build_id(const unsigned char* notes, std::size_t size, unsigned char* out,
                          std::size_t cap) {
  std::size_t at = 0;
  while (at + sizeof(ElfW(Nhdr)) <= size) {
    ElfW(Nhdr) nh;
    std::memcpy(&nh, notes + at, sizeof nh);
    std::size_t name_at = at + sizeof nh;
    std::size_t desc_at = name_at + ((nh.n_namesz + 3) & ~std::size_t{3});
    std::size_t next = desc_at + ((nh.n_descsz + 3) & ~std::size_t{3});
    if (desc_at > size || next > size || next <= at) return 0;
    if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
        std::memcmp(notes + name_at, "GNU", 4) == 0) {
      std::size_t n = nh.n_descsz < cap ? nh.n_descsz : cap;
      std::memcpy(out, notes + desc_at, n);
      return n;
    }
    at = next;
  }
  return 0;
}

namespace {
bool read_at(int fd, void* buf, std::size_t n, off_t off) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = pread(fd, p, n, off);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
    off += r;
  }
  return true;
}
}  // namespace

std::vector<unsigned char> build_id_of_file(const std::string& path) {
  std::vector<unsigned char> id;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return id;
  ElfW(Ehdr) eh;
  if (read_at(fd, &eh, sizeof eh, 0) && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
      eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(ElfW(Phdr)) &&
      eh.e_phnum < 256) {
    for (int i = 0; i < eh.e_phnum && id.empty(); ++i) {
      ElfW(Phdr) ph;
      if (!read_at(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph))) break;
      if (ph.p_type != PT_NOTE || ph.p_filesz > (1u << 20)) continue;
      std::vector<unsigned char> notes(ph.p_filesz);
      if (!read_at(fd, notes.data(), notes.size(), static_cast<off_t>(ph.p_offset))) break;
      unsigned char out[64];
      std::size_t n = find_build_id(notes.data(), notes.size(), out, sizeof out);
      id.assign(out, out + n);
    }
  }
  close(fd);
  return id;
}

std::string hex_bytes(const std::vector<unsigned char>& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (unsigned char b : bytes) {
    s.push_back(digits[b >> 4]);
    s.push_back(digits[b & 15]);
  }
  return s;
}

}  // namespace connleak::journal
