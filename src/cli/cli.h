// The `nvmf-ublk` command line: nvme-cli's verbs and flag names over the daemon's control socket
// (discover talks to the discovery controller directly and needs no daemon).
#ifndef NVMF_UBLK_CLI_CLI_H_
#define NVMF_UBLK_CLI_CLI_H_

#include <ostream>
#include <string>
#include <vector>

namespace nvmf_ublk::cli {

// Runs one command line; writes results to `out` and one-line errors to `err` ("nvmf-ublk: ...").
// Returns the process exit status (0 success, 1 failure, 2 usage error).
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace nvmf_ublk::cli

#endif  // NVMF_UBLK_CLI_CLI_H_
