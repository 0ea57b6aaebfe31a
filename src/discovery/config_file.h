// The files nvme-cli reads to find discovery controllers, read the same way:
//   /etc/nvme/discovery.conf: one discovery controller per line, written as nvme-cli options
//     ("-t tcp -a 192.168.1.10 -s 8009 -q nqn..."); '#' starts a comment, blank lines are skipped.
//     Each line is split into arguments here (quotes group, backslash escapes); the CLI parses the
//     arguments with the same options as `discover`, so a line means what it would on the command
//     line.
//   /etc/nvme/config.json: libnvme's JSON configuration (hosts -> subsystems -> ports). Ports of
//     the well-known discovery subsystem (or marked "discovery") are discovery controllers; the
//     other ports are I/O controllers connect-all connects directly.
#ifndef NVMF_UBLK_DISCOVERY_CONFIG_FILE_H_
#define NVMF_UBLK_DISCOVERY_CONFIG_FILE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace nvmf_ublk::discovery {

// The folder of nvme-cli's host files (hostnqn, hostid, discovery.conf, config.json):
// $NVMF_UBLK_NVME_CONFIG_DIR when set (tests, read-only roots), else /etc/nvme.
std::string NvmeConfigDir();

struct ConfLine {
  int line = 0;  // 1-based line number in the file
  std::vector<std::string> args;
};

// Splits discovery.conf text into its non-empty lines' arguments. kInvalidArgument names
// "<origin>:<line>: ..." for an unterminated quote.
absl::StatusOr<std::vector<ConfLine>> SplitConfLines(std::string_view text,
                                                     std::string_view origin);

// One port of config.json, with the host and subsystem it sits under. Options absent from the
// file stay at "unset" (-1 / empty), so that command-line values or defaults apply.
struct JsonPort {
  std::string hostnqn;
  std::string hostid;
  std::string subnqn;  // empty or the discovery NQN: a discovery controller
  bool discovery = false;
  std::string transport = "tcp";
  std::string traddr;
  std::string trsvcid;
  std::string host_traddr;
  std::string host_iface;
  int nr_io_queues = -1;
  int queue_size = -1;
  int keep_alive_tmo = -1;
  int reconnect_delay = -1;
  int ctrl_loss_tmo = -2;  // -1 is a value (forever)
  int fast_io_fail_tmo = -2;
  int tos = -2;
  int hdr_digest = -1;  // -1 unset, 0/1
  int data_digest = -1;
  int disable_sqflow = -1;
  int persistent = -1;
  // DH-HMAC-CHAP secrets as libnvme reads them: "dhchap_key" of the host (or of the port, which
  // wins) is the host's secret, "dhchap_ctrl_key" of the port the controller's.
  std::string dhchap_key;
  std::string dhchap_ctrl_key;
  std::string where;  // "<origin>: hosts[0].subsystems[1].ports[0]" for messages
};

// Parses config.json text. kInvalidArgument with the JSON path of the first bad value.
absl::StatusOr<std::vector<JsonPort>> ParseJsonConfig(std::string_view text,
                                                      std::string_view origin);

// Reads a whole file; kNotFound when it does not exist.
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

}  // namespace nvmf_ublk::discovery

#endif  // NVMF_UBLK_DISCOVERY_CONFIG_FILE_H_
