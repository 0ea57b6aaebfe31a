// nvmf-ublk's public control API: a client for the nvmf-ublkd control socket.
//
// The daemon listens on a Unix stream socket (default /run/nvmf-ublk/control.sock, root only,
// peer credentials checked). Each request is one JSON object on one line; each reply is one JSON
// object on one line: {"ok": true, ...} or {"ok": false, "code": "UNAVAILABLE", "error": "..."}.
// The `nvmf-ublk` CLI is a thin layer over this client; scripts may use either.
#ifndef NVMF_UBLK_CONTROL_H_
#define NVMF_UBLK_CONTROL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace nvmf_ublk {

inline constexpr char kDefaultControlSocket[] = "/run/nvmf-ublk/control.sock";

// What `nvme connect` takes, with nvme-cli's defaults.
struct ConnectArgs {
  std::string transport = "tcp";
  std::string traddr;
  std::string trsvcid = "4420";
  std::string subnqn;
  std::string hostnqn;  // empty: the daemon's /etc/nvme/hostnqn
  std::string hostid;   // empty: the daemon's /etc/nvme/hostid
  std::string host_traddr;
  std::string host_iface;
  int nr_io_queues = 0;  // 0: one per reactor
  int queue_size = 128;
  int keep_alive_tmo = -1;    // seconds; -1: default (5)
  int reconnect_delay = 10;   // seconds
  int ctrl_loss_tmo = 600;    // seconds; -1: forever
  int fast_io_fail_tmo = -1;  // seconds; -1: off
  bool hdr_digest = false;
  bool data_digest = false;
  // DH-HMAC-CHAP secrets in nvme-cli's representation ("DHHC-1:hh:base64:"): the host's (-S), and
  // the controller's (-C) for bidirectional authentication. Kept in the daemon's memory and its
  // state file (mode 0600) for reconnects and restarts; never logged or listed.
  std::string dhchap_secret;
  std::string dhchap_ctrl_secret;
  // TLS 1.3 with a PSK (--tls, --tls-key): the configured PSK in the interchange format
  // ("NVMeTLSkey-1:hh:base64:"); kept like the DH-HMAC-CHAP secrets.
  bool tls = false;
  std::string tls_key;
  // Multipath I/O policy of the devices this connect creates, or sets on the devices it adds a
  // path to: "round-robin", "queue-depth", "failover", "latency"; empty: round-robin for a new
  // device, unchanged for an existing one.
  std::string iopolicy;
  // TP 4129: a write left unanswered by a lost association goes to another path only after
  // KATO + CQT (on by default).
  bool ghost_write_hold = true;
  // nvme-cli -D: a second association even when one to this subsystem through this portal (and
  // host address, interface and host NQN) exists; without it such a connect returns the devices
  // it already has.
  bool duplicate_connect = false;
  bool disable_sqflow = false;  // ask the controller to disable SQ flow control (SQHD updates)
  int tos = -1;                 // IP type of service of the TCP connections; -1: system default
  // Who made the connection: a tag given with --owner (e.g. "autoconnect"), or, for connections a
  // persistent discovery controller made, "discovery:<its id>". Empty: made by hand.
  std::string owner;
};

// One path of a device: a controller through one portal, as the daemon sees it now.
struct PathInfo {
  std::string controller;  // controller name
  std::string traddr;
  std::string trsvcid;
  uint16_t cntlid = 0;
  std::string state;      // the controller's: connecting, live, resetting, deleting, deleted
  std::string ana_state;  // optimized, non-optimized, inaccessible, persistent-loss, change
  uint32_t in_flight = 0;
  uint64_t ios = 0;       // commands sent on this path
  uint64_t errors = 0;    // commands that failed on it (and were re-issued or failed)
  double latency_us = 0;  // recent mean service time (0: no sample yet)
};

struct DeviceInfo {
  std::string path;  // /dev/ublkbN
  int dev_id = -1;
  uint32_t nsid = 0;
  uint64_t size_bytes = 0;
  uint32_t logical_block = 0;
  std::string stable_id;  // nguid.<hex> / eui.<hex> / uuid.<uuid>
  std::string subnqn;
  std::string controller;  // controller name
  // "live": the daemon serves it; "recovering": the device exists and keeps its I/O queued
  // while a (re)started daemon reconnects and takes it over. In a disconnect reply: "removed", or
  // "given-up" when its I/O did not stop within nvmf-ublkd's --stop-timeout (it is kept in the
  // daemon's memory, fails what it is still handed with EIO, and is not deleted from the kernel).
  std::string state = "live";
  std::string iopolicy;         // multipath I/O policy
  std::vector<PathInfo> paths;  // in the order they were added
};

struct ControllerSummary {
  std::string name;
  std::string subnqn;
  std::string traddr;
  std::string trsvcid;
  std::string state;  // connecting, live, resetting, deleting, deleted
  uint32_t reconnects = 0;
  uint16_t cntlid = 0;
  std::string owner;  // ConnectArgs::owner
  std::vector<DeviceInfo> devices;
};

// `connect-all`: a discovery controller (the address fields, host identity and transport options of
// `args`; subnqn is ignored) and the options every connection it makes gets (the rest of `args`).
struct ConnectAllArgs {
  ConnectArgs args;
  // Keep the discovery controller (keep-alive, discovery-log-change events, re-read after a
  // reconnect), connect records that appear, disconnect the ones it connected that vanished from
  // the log for `grace_s` seconds. Kept across daemon restarts until disconnect-all.
  bool persistent = false;
  int grace_s = 60;
  int max_controllers = 16;  // discovery controllers read, referrals included
};

// What became of one record of the discovery log.
struct RecordResult {
  std::string subnqn;
  std::string traddr;
  std::string trsvcid;
  // "connected" (by this request), "already-connected", "failed", "skipped"
  std::string result;
  std::string error;  // failed/skipped: why
  std::vector<std::string> devices;
};

struct ConnectAllResult {
  std::vector<DeviceInfo> devices;  // of every record connected or already connected
  std::vector<RecordResult> records;
  // Discovery controllers read (the first, then referrals): "traddr:trsvcid", and for each one
  // that could not be read, the reason.
  std::vector<std::string> controllers;
  std::vector<std::string> controller_errors;
  std::string discovery_id;  // persistent: the discovery controller's id ("" otherwise)
};

// A persistent discovery controller the daemon keeps, and what it decided about each record.
struct DiscoveryRecordInfo {
  std::string subnqn;
  std::string traddr;
  std::string trsvcid;
  // wanted, connecting, connected (by this discovery controller), connected-elsewhere, vanishing
  std::string state;
  int failures = 0;
  std::string error;           // the latest failed connect
  double retry_in_s = 0;       // wanted after a failure: seconds to the next attempt
  double vanishing_for_s = 0;  // vanishing: seconds since it left the log
};

struct DiscoveryControllerInfo {
  std::string id;  // "<traddr>:<trsvcid>" (+ " via <host_traddr>/<host_iface>", " as <hostnqn>")
  std::string traddr;
  std::string trsvcid;
  std::string owner;
  std::string state;  // the controller's: connecting, live, resetting, ...
  std::string error;  // why it is not live, or the latest failed log read
  uint32_t reconnects = 0;
  uint64_t genctr = 0;  // of the latest log read
  int grace_s = 0;
  std::vector<DiscoveryRecordInfo> records;
};

class ControlClient {
 public:
  // Connects to the daemon. kUnavailable with "nvmf-ublkd is not running" when nobody listens,
  // kPermissionDenied when the socket is not ours to use.
  static absl::StatusOr<ControlClient> Open(std::string_view socket_path = kDefaultControlSocket);
  ControlClient(ControlClient&& other) noexcept;
  ControlClient& operator=(ControlClient&& other) noexcept;
  ~ControlClient();

  // Connects a controller and creates one device per namespace; returns them. When the same
  // connection exists already (and not args.duplicate_connect), returns its devices and sets
  // *already_connected.
  absl::StatusOr<std::vector<DeviceInfo>> Connect(const ConnectArgs& args,
                                                  bool* already_connected = nullptr);
  // Reads the discovery log (referrals followed) and connects every NVM subsystem record.
  absl::StatusOr<ConnectAllResult> ConnectAll(const ConnectAllArgs& args);
  // Removes every device of subsystem `subnqn` (and its controllers); returns what was removed.
  absl::StatusOr<std::vector<DeviceInfo>> DisconnectSubsystem(std::string_view subnqn);
  // Removes the paths through traddr:trsvcid (empty trsvcid: any port of traddr) to `subnqn`:
  // devices that keep another path stay (their I/O moves there); devices left without a path
  // are removed. Returns the devices removed.
  absl::StatusOr<std::vector<DeviceInfo>> DisconnectPath(std::string_view subnqn,
                                                         std::string_view traddr,
                                                         std::string_view trsvcid);
  // Removes one device (/dev/ublkbN) and, when it was the last, its controller.
  absl::StatusOr<std::vector<DeviceInfo>> DisconnectDevice(std::string_view path);
  // Changes a device's multipath I/O policy at once (see ConnectArgs::iopolicy).
  absl::Status SetIoPolicy(std::string_view device, std::string_view policy);
  // Removes every device and controller, and every persistent discovery controller; with an
  // owner, only those made with that owner (and what its discovery controllers connected).
  // Returns the devices removed.
  absl::StatusOr<std::vector<DeviceInfo>> DisconnectAll(std::string_view owner = "");
  // The persistent discovery controllers.
  absl::StatusOr<std::vector<DiscoveryControllerInfo>> ListDiscovery();
  absl::StatusOr<std::vector<ControllerSummary>> List();
  // Each device once, with its paths.
  absl::StatusOr<std::vector<DeviceInfo>> ListDevices();

  // One raw request/reply round trip (a JSON object in, the reply object out, as text). Every call
  // waits at most the timeout (set_timeout_ms) for the reply: then kDeadlineExceeded, and the
  // client is unusable (a late reply would answer the wrong request).
  absl::StatusOr<std::string> Call(std::string_view request_json);

  // Default 60 s; <= 0: wait forever.
  void set_timeout_ms(int ms) { timeout_ms_ = ms; }

 private:
  explicit ControlClient(int fd) : fd_(fd) {}
  int fd_ = -1;
  int timeout_ms_ = 60'000;
  std::string buffer_;
};

}  // namespace nvmf_ublk

#endif  // NVMF_UBLK_CONTROL_H_
