// Files that survive a crash (kill -9, power cut) whole: replacing a file
// atomically, appending a line durably, and reading a line-oriented file
// whose last append may have been torn. And reading a file that a user
// named, which may be anything: a directory, /dev/zero, a FIFO, a huge file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/status.h"

namespace cohort {

// Replaces `path` with the concatenation of `parts`: writes `path`.tmp,
// fsyncs it, renames it over `path` and fsyncs the directory. A crash leaves
// either the old file or the new one, never a mix. IoError naming the step
// that failed.
Status write_file_atomically(const std::filesystem::path& path, std::span<const std::string_view> parts);

// Appends `line` and a newline to `path` (created if missing) and fsyncs it.
// A crash may leave the line torn (without its newline); read_complete_lines
// cuts such a tail off. IoError.
Status append_line_durably(const std::filesystem::path& path, std::string_view line);

// The lines of `path` that end with a newline, without it; a missing file
// has none. A torn last line (no newline: its append was interrupted) is cut
// off the file, so that the next append starts a line of its own. IoError.
Result<std::vector<std::string>> read_complete_lines(const std::filesystem::path& path);

// The whole of `path`, as write_file_atomically left it. NotFound when it is
// missing, IoError when it cannot be read.
Result<std::string> read_whole_file(const std::filesystem::path& path);

// The whole of `path` when it is a regular file of at most `max_bytes`,
// checked before anything is read (on the opened descriptor, so a swap in
// between cannot get past it): "<path> is not a regular file" (IoError) for
// a directory, device, FIFO or socket; "<path> is N bytes, more than the
// limit of M for <what>" (ResourceExhausted); NotFound "no file <path>".
Result<std::string> read_regular_file(const std::filesystem::path& path, uint64_t max_bytes, std::string_view what);

}  // namespace cohort
