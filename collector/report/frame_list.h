#pragma once
// One symbolized stack frame, and the frames of a stack as the report model
// holds them: shared, because 10,000 connections opened from 100 sites carry
// 100 distinct stacks. Copying a FrameList copies a pointer; the frames are
// copied only when a shared list is written to (copy on write), so a writer
// that escapes one connection's frames (the text report) never changes
// another's.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace connleak {

struct Frame {
  std::optional<std::uint64_t> address;  // absent for Python frames
  std::optional<std::string> module;
  std::optional<std::string> function;
  std::optional<std::string> file;
  std::optional<int> line;
};

class FrameList {
 public:
  FrameList() = default;
  FrameList(std::vector<Frame> frames)  // NOLINT: implicit, a list is its frames
      : frames_(frames.empty() ? nullptr
                               : std::make_shared<const std::vector<Frame>>(std::move(frames))) {}
  FrameList(std::initializer_list<Frame> frames) : FrameList(std::vector<Frame>(frames)) {}

  // Reading: as a const std::vector<Frame>. Only const iteration exists, so a
  // loop over a non-const list never copies it.
  const std::vector<Frame>& frames() const { return frames_ ? *frames_ : no_frames(); }
  operator const std::vector<Frame>&() const { return frames(); }  // NOLINT: implicit
  std::vector<Frame>::const_iterator begin() const { return frames().begin(); }
  std::vector<Frame>::const_iterator end() const { return frames().end(); }
  std::size_t size() const { return frames_ ? frames_->size() : 0; }
  bool empty() const { return size() == 0; }
  const Frame& operator[](std::size_t i) const { return frames()[i]; }
  const Frame& at(std::size_t i) const { return frames().at(i); }
  const Frame& front() const { return frames().front(); }
  const Frame& back() const { return frames().back(); }

  // Writing: this list's own frames (copied first when another list shares them).
  std::vector<Frame>& edit() {
    if (!frames_) {
      frames_ = std::make_shared<std::vector<Frame>>();
    } else if (frames_.use_count() > 1) {
      frames_ = std::make_shared<std::vector<Frame>>(*frames_);
    }
    // Every list is created here or by the constructors, never from a pointer
    // to const data someone else holds: the cast only drops our own const.
    return const_cast<std::vector<Frame>&>(*frames_);
  }
  Frame& operator[](std::size_t i) { return edit()[i]; }
  void push_back(Frame f) { edit().push_back(std::move(f)); }
  void clear() { frames_.reset(); }

  // Equal for the same shared frames (two lists copied from one); distinct
  // lists with equal frames may differ. Lets a writer cache per stack.
  const void* identity() const { return frames_.get(); }

 private:
  static const std::vector<Frame>& no_frames() {
    static const std::vector<Frame>* none = new std::vector<Frame>;  // outlives exit reports
    return *none;
  }
  std::shared_ptr<const std::vector<Frame>> frames_;
};

}  // namespace connleak
