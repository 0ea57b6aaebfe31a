// CPU time of this process (user + sys), for "IOPS per CPU-second" in benchmark reports.
#ifndef NVMF_UBLK_TOOLS_BENCH_CPU_TIME_H_
#define NVMF_UBLK_TOOLS_BENCH_CPU_TIME_H_

#include <sys/resource.h>

namespace nvmf_ublk::bench {

inline double CpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Context switches of this process (voluntary + involuntary): each wakeup of an idle thread is one.
inline long ContextSwitches() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

}  // namespace nvmf_ublk::bench

#endif  // NVMF_UBLK_TOOLS_BENCH_CPU_TIME_H_
