#include "base/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>

#include "absl/strings/ascii.h"

namespace nvmf_ublk {
namespace {

std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_sink_mu;
LogSinkFn g_sink;  // Guarded by g_sink_mu.

bool UnderJournal() {
  static const bool journal = getenv("JOURNAL_STREAM") != nullptr;
  return journal;
}

const char* Basename(const char* path) {
  const char* slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

}  // namespace

void SetMinLogLevel(LogLevel level) { g_min_level.store(static_cast<int>(level)); }
LogLevel MinLogLevel() {
  return static_cast<LogLevel>(g_min_level.load(std::memory_order_relaxed));
}
bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed);
}

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  std::string t = absl::AsciiStrToLower(absl::string_view(text.data(), text.size()));
  if (t == "debug")
    *level = LogLevel::kDebug;
  else if (t == "info")
    *level = LogLevel::kInfo;
  else if (t == "warning" || t == "warn")
    *level = LogLevel::kWarning;
  else if (t == "error")
    *level = LogLevel::kError;
  else
    return false;
  return true;
}

ScopedLogSink::ScopedLogSink(LogSinkFn fn) {
  std::lock_guard<std::mutex> lock(g_sink_mu);
  previous_ = std::move(g_sink);
  g_sink = std::move(fn);
}

ScopedLogSink::~ScopedLogSink() {
  std::lock_guard<std::mutex> lock(g_sink_mu);
  g_sink = std::move(previous_);
}

LogMessage::LogMessage(LogLevel level, const char* file, int line)
    : level_(level), file_(file), line_(line) {}

LogMessage::~LogMessage() {
  const std::string text = stream_.str();
  {
    std::lock_guard<std::mutex> lock(g_sink_mu);
    if (g_sink) g_sink(level_, text);
  }
  static constexpr char kLetters[] = "DIWEF";
  static constexpr int kSyslog[] = {7, 6, 4, 3, 2};
  const int idx = static_cast<int>(level_);
  char prefix[96];
  if (UnderJournal()) {
    snprintf(prefix, sizeof(prefix), "<%d>%s:%d] ", kSyslog[idx], Basename(file_), line_);
  } else {
    timeval tv;
    gettimeofday(&tv, nullptr);
    tm tm_buf;
    localtime_r(&tv.tv_sec, &tm_buf);
    snprintf(prefix, sizeof(prefix), "%c%02d%02d %02d:%02d:%02d.%06ld %s:%d] ", kLetters[idx],
             tm_buf.tm_mon + 1, tm_buf.tm_mday, tm_buf.tm_hour, tm_buf.tm_min, tm_buf.tm_sec,
             static_cast<long>(tv.tv_usec), Basename(file_), line_);
  }
  std::string out = prefix;
  out += text;
  out += '\n';
  // One write per line so concurrent threads never interleave within a line.
  ssize_t unused = ::write(STDERR_FILENO, out.data(), out.size());
  (void)unused;
  if (level_ == LogLevel::kFatal) abort();
}

}  // namespace nvmf_ublk
