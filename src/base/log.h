// A small leveled logging shim (Debian 12's Abseil predates absl/log).
//
//   NLOG(INFO) << "controller " << name << " live";
//
// Lines go to stderr as "I1125 17:05:03.123456 file.cc:42] text". Under systemd (JOURNAL_STREAM
// set) the timestamp is dropped and a "<N>" syslog priority prefix is written instead, so journald
// keeps the level. NLOG(FATAL) aborts after writing. Tests can capture lines with ScopedLogSink.
#ifndef NVMF_UBLK_BASE_LOG_H_
#define NVMF_UBLK_BASE_LOG_H_

#include <functional>
#include <sstream>
#include <string_view>

namespace nvmf_ublk {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();
bool LogEnabled(LogLevel level);
// Parses "debug", "info", "warning", "error" (case-insensitive). Returns false if unknown.
bool ParseLogLevel(std::string_view text, LogLevel* level);

// Receives every emitted line (level, text without prefix) while installed; for tests.
using LogSinkFn = std::function<void(LogLevel, std::string_view)>;
class ScopedLogSink {
 public:
  explicit ScopedLogSink(LogSinkFn fn);
  ~ScopedLogSink();
  ScopedLogSink(const ScopedLogSink&) = delete;
  ScopedLogSink& operator=(const ScopedLogSink&) = delete;

 private:
  LogSinkFn previous_;
};

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

namespace log_internal {
constexpr LogLevel DEBUG = LogLevel::kDebug;
constexpr LogLevel INFO = LogLevel::kInfo;
constexpr LogLevel WARNING = LogLevel::kWarning;
constexpr LogLevel ERROR = LogLevel::kError;
constexpr LogLevel FATAL = LogLevel::kFatal;
// Turns "stream << a << b" into a void expression so NLOG can sit in a ?: (safe inside if/else).
struct Voidify {
  void operator&(std::ostream&) {}
};
}  // namespace log_internal

}  // namespace nvmf_ublk

#define NLOG(severity)                                                                       \
  !::nvmf_ublk::LogEnabled(::nvmf_ublk::log_internal::severity)                              \
      ? (void)0                                                                              \
      : ::nvmf_ublk::log_internal::Voidify() &                                               \
            ::nvmf_ublk::LogMessage(::nvmf_ublk::log_internal::severity, __FILE__, __LINE__) \
                .stream()

// Checks an invariant whose failure means a bug in this program (never bad input): logs and aborts.
#define NCHECK(cond)                                                                               \
  (cond) ? (void)0                                                                                 \
         : ::nvmf_ublk::log_internal::Voidify() &                                                  \
               ::nvmf_ublk::LogMessage(::nvmf_ublk::LogLevel::kFatal, __FILE__, __LINE__).stream() \
                   << "check failed: " #cond " "

#endif  // NVMF_UBLK_BASE_LOG_H_
