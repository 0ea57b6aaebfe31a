// The fabrics verbs of `nvmf-ublk` that work from discovery logs and the host's nvme-cli files:
// discover, connect-all, list-subsys, gen-hostnqn, show-hostnqn; and the fabrics options every
// connecting verb shares, spelled as nvme-cli spells them (flags nvmf-ublk cannot honour are
// refused with a clear message, never ignored).
#ifndef NVMF_UBLK_CLI_FABRICS_H_
#define NVMF_UBLK_CLI_FABRICS_H_

#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "nvmf_ublk/control.h"

namespace nvmf_ublk::cli {

// What the fabrics options of one command line (or one discovery.conf line) say.
struct FabricsOptions {
  ConnectArgs args;  // transport address, host identity and connect options
  bool keep_alive_given = false;
  bool persistent = false;
  bool quiet = false;    // discover/connect-all --quiet: no notes, errors only
  bool verbose = false;  // connect-all -v: one line per record on stderr
  std::string output = "normal";
  // Options nvme-cli has that nvmf-ublk refuses (name -> why), and options it cannot use (a secret
  // file it cannot read); filled when given.
  std::vector<std::string> refused;
};

enum class Verb { kDiscover, kConnect, kConnectAll };

// Adds nvme-cli's fabrics options for `verb` to `app`, writing into `o`. -a is required for
// connect only (discover/connect-all read discovery.conf without it).
void AddFabricsOptions(CLI::App* app, FabricsOptions* o, Verb verb);
// A refused option's message, or "" when none was given.
std::string RefusedMessage(const FabricsOptions& o);

// Parses one discovery.conf line's arguments with the discover options (the same meaning as on
// the command line). `where` ("/etc/nvme/discovery.conf:3") starts the error messages.
absl::StatusOr<FabricsOptions> ParseConfLine(const std::vector<std::string>& args,
                                             const std::string& where);

// The discovery controllers to use when the command line names none: discovery.conf, then the
// discovery ports of config.json (NvmeConfigDir()). Each gets the command line's options where
// the file line does not set them. kNotFound when neither file lists one.
absl::StatusOr<std::vector<FabricsOptions>> DiscoveryControllersFromFiles(
    const FabricsOptions& command_line);

int RunDiscover(const FabricsOptions& o, std::ostream& out, std::ostream& err);
int RunConnectAll(ControlClient* client, const FabricsOptions& o, int grace_s, std::ostream& out,
                  std::ostream& err);
// One line per persistent discovery controller (state, generation, grace, owner, why it is not
// live), then one per record it tracks (connected, connecting with failures, vanishing).
void PrintDiscoveryControllers(const std::vector<DiscoveryControllerInfo>& dcs, std::ostream& out);
int RunListSubsys(ControlClient* client, const std::string& output, std::ostream& out,
                  std::ostream& err);
int RunGenHostNqn(std::ostream& out);
// nvme-cli's gen-dhchap-key: a DH-HMAC-CHAP secret, random unless `secret_hex` is given; with
// `hmac` 1-3 it is transformed for `nqn` (default: the host NQN of /etc/nvme/hostnqn). `length`
// 0: 32 bytes, or the hash's length with a transform.
int RunGenDhchapKey(const std::string& secret_hex, int length, int hmac, const std::string& nqn,
                    std::ostream& out, std::ostream& err);
// nvme-cli's gen-tls-key: a configured TLS PSK (NVMeTLSkey-1:hh:...), random unless `secret_hex`.
int RunGenTlsKey(const std::string& secret_hex, int hmac, std::ostream& out, std::ostream& err);
// nvme-cli's check-tls-key: checks `key`; with both NQNs prints the PSK identity (`version` 0 or
// 1) and, with `show_psk`, the derived TLS PSK in hex (for a kernel target's .nvme keyring).
int RunCheckTlsKey(const std::string& key, const std::string& hostnqn, const std::string& subnqn,
                   int version, bool show_psk, std::ostream& out, std::ostream& err);
// nvme-cli's check-dhchap-key: whether `key` is a well-formed secret (CRC included).
int RunCheckDhchapKey(const std::string& key, std::ostream& out, std::ostream& err);
int RunShowHostNqn(std::ostream& out, std::ostream& err);

// Resolves the host identity for a connecting command; a generated one is saved to
// /etc/nvme/hostnqn and hostid (with a note on `err`) so that it never changes afterwards.
absl::Status ResolveAndSaveHostIdentity(ConnectArgs* args, std::ostream& err);

}  // namespace nvmf_ublk::cli

#endif  // NVMF_UBLK_CLI_FABRICS_H_
