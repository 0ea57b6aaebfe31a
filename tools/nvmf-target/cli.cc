#include "cli.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>
#include <type_traits>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "auth/crypto.h"
#include "base/status.h"
#include "target.h"

namespace nvmf_ublk::target {
namespace {

std::string S(std::string_view v) { return std::string(v); }

std::vector<std::string> Split(std::string_view text, char sep) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(absl::string_view(text.data(), text.size()), sep)) {
    out.emplace_back(part.data(), part.size());
  }
  return out;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Decimal, or hex with 0x.
absl::StatusOr<uint64_t> ParseUint(std::string_view text, const std::string& what,
                                   uint64_t max = UINT64_MAX) {
  int base = 10;
  std::string_view digits = text;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": '", S(text), "' is not a number"));
  }
  if (v > max) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", v, " is above the limit ", max));
  }
  return v;
}

template <size_t N>
absl::StatusOr<std::array<uint8_t, N>> ParseHex(std::string_view text, const std::string& what) {
  std::string hex;
  for (char c : text) {
    if (c != '-') hex.push_back(c);
  }
  if (hex.size() != 2 * N) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", S(text), "' must have ", 2 * N, " hex digits"));
  }
  std::array<uint8_t, N> out;
  for (size_t i = 0; i < N; ++i) {
    auto [end, ec] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, out[i], 16);
    if (ec != std::errc() || end != hex.data() + 2 * i + 2) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": '", S(text), "' is not hex"));
    }
  }
  return out;
}

absl::StatusOr<bool> ParseBool(std::string_view text, const std::string& what) {
  const std::string t = Lower(S(text));
  if (t == "1" || t == "true" || t == "yes" || t == "on") return true;
  if (t == "0" || t == "false" || t == "no" || t == "off") return false;
  return absl::InvalidArgumentError(absl::StrCat(what, ": '", t, "' is not a boolean"));
}

absl::StatusOr<uint32_t> ParseSize32(std::string_view text, const std::string& what) {
  auto v = ParseSize(text);
  if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", v.status().message()));
  if (*v > UINT32_MAX) return absl::InvalidArgumentError(absl::StrCat(what, ": too large"));
  return static_cast<uint32_t>(*v);
}

}  // namespace

absl::StatusOr<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) return absl::InvalidArgumentError(absl::StrCat("invalid size '", S(text), "'"));
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + i, v);
  if (ec != std::errc()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid size '", S(text), "'"));
  }
  std::string suffix = Lower(S(text.substr(i)));
  if (suffix.size() > 1 && (suffix.substr(1) == "ib" || suffix.substr(1) == "b")) {
    suffix = suffix.substr(0, 1);
  }
  int shift = 0;
  if (suffix.empty() || suffix == "b") {
    shift = 0;
  } else if (suffix == "k") {
    shift = 10;
  } else if (suffix == "m") {
    shift = 20;
  } else if (suffix == "g") {
    shift = 30;
  } else if (suffix == "t") {
    shift = 40;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid size '", S(text), "' (suffixes: K, M, G, T)"));
  }
  if (shift > 0 && v > (UINT64_MAX >> shift)) {
    return absl::InvalidArgumentError(absl::StrCat("size '", S(text), "' overflows"));
  }
  return v << shift;
}

absl::StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view text) {
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("'", S(text), "': expected [IPV6]:PORT"));
    }
    host = S(text.substr(1, close - 1));
    port = S(text.substr(close + 2));
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", S(text), "': expected ADDR:PORT (IPv6 as [ADDR]:PORT)"));
    }
    host = S(text.substr(0, colon));
    port = S(text.substr(colon + 1));
  }
  in6_addr buf;
  if (inet_pton(AF_INET, host.c_str(), &buf) != 1 && inet_pton(AF_INET6, host.c_str(), &buf) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", host, "' is not a numeric IPv4 or IPv6 address"));
  }
  ASSIGN_OR_RETURN(uint64_t p, ParseUint(port, absl::StrCat("port in '", S(text), "'"), 65535));
  return std::make_pair(host, static_cast<uint16_t>(p));
}

absl::StatusOr<NamespaceConfig> ParseNamespaceSpec(std::string_view spec) {
  const std::string where = absl::StrCat("--ns '", S(spec), "'");
  std::vector<std::string> opts = Split(spec, ',');
  const std::string main = opts[0];
  opts.erase(opts.begin());
  NamespaceConfig ns;
  const size_t colon = main.find(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected ram:SIZE[:BS], null:SIZE[:BS] or file:PATH[:BS]"));
  }
  const std::string kind = Lower(main.substr(0, colon));
  std::string rest = main.substr(colon + 1);
  // A trailing ":512" / ":4096" is the block size.
  const size_t last = rest.rfind(':');
  if (last != std::string::npos) {
    ASSIGN_OR_RETURN(uint64_t bs, ParseUint(rest.substr(last + 1), where + " block size", 65536));
    ns.block_size = static_cast<uint32_t>(bs);
    rest = rest.substr(0, last);
  }
  if (kind == "ram" || kind == "null") {
    ns.kind = kind == "ram" ? BackendKind::kRam : BackendKind::kNull;
    auto size = ParseSize(rest);
    if (!size.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", size.status().message()));
    }
    ns.size_bytes = *size;
  } else if (kind == "file") {
    ns.kind = BackendKind::kFile;
    if (rest.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": missing path"));
    ns.path = rest;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": unknown kind '", kind, "' (ram, null or file)"));
  }
  for (const std::string& opt : opts) {
    const size_t eq = opt.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": option '", opt, "' is not KEY=VALUE"));
    }
    const std::string key = Lower(opt.substr(0, eq)), value = opt.substr(eq + 1);
    const std::string what = absl::StrCat(where, " ", key);
    if (key == "nsid") {
      ASSIGN_OR_RETURN(uint64_t v, ParseUint(value, what, 0xFFFFFFFE));
      ns.nsid = static_cast<uint32_t>(v);
    } else if (key == "ana-group" || key == "anagrp" || key == "anagrpid") {
      ASSIGN_OR_RETURN(uint64_t v, ParseUint(value, what, 0xFFFF));
      ns.ana_group = static_cast<uint32_t>(v);
    } else if (key == "size") {
      auto size = ParseSize(value);
      if (!size.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": ", size.status().message()));
      }
      ns.size_bytes = *size;
    } else if (key == "nguid") {
      ASSIGN_OR_RETURN(ns.nguid, ParseHex<16>(value, what));
    } else if (key == "uuid") {
      ASSIGN_OR_RETURN(ns.uuid, ParseHex<16>(value, what));
    } else if (key == "eui64") {
      ASSIGN_OR_RETURN(ns.eui64, ParseHex<8>(value, what));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": unknown option '", key, "' (nsid, ana-group, size, nguid, uuid, eui64)"));
    }
  }
  return ns;
}

absl::StatusOr<uint16_t> ParseStatusName(std::string_view text) {
  const std::string t = Lower(S(text));
  if (t == "ana-inaccessible" || t == "inaccessible") {
    return nvme::MakeStatus(nvme::kSctPath, nvme::kScAnaInaccessible);
  }
  if (t == "ana-loss" || t == "persistent-loss") {
    return nvme::MakeStatus(nvme::kSctPath, nvme::kScAnaPersistentLoss);
  }
  if (t == "ana-transition" || t == "transition") {
    return nvme::MakeStatus(nvme::kSctPath, nvme::kScAnaTransition);
  }
  if (t == "path") return nvme::MakeStatus(nvme::kSctPath, nvme::kScInternalPathError);
  if (t == "dnr") return nvme::MakeStatus(nvme::kSctGeneric, nvme::kScInternalError, true);
  if (t == "transient") {
    return nvme::MakeStatus(nvme::kSctGeneric, nvme::kScTransientTransportError);
  }
  const std::vector<std::string> parts = Split(t, ':');
  if (parts.size() == 2 || (parts.size() == 3 && parts[2] == "dnr")) {
    auto sct = ParseUint(parts[0], "status SCT", 7);
    auto sc = ParseUint(parts[1], "status SC", 0xFF);
    if (sct.ok() && sc.ok() && (*sct != 0 || *sc != 0)) {
      return nvme::MakeStatus(static_cast<uint8_t>(*sct), static_cast<uint8_t>(*sc),
                              parts.size() == 3);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "status '", t,
      "': use ana-inaccessible, ana-loss, ana-transition, path, dnr, transient or SCT:SC[:dnr]"));
}

absl::StatusOr<PortRef> ParsePortRef(std::string_view text) {
  PortRef ref;
  if (!text.empty() && text[0] == '#') {
    ref.by_index = true;
    text.remove_prefix(1);
  }
  ASSIGN_OR_RETURN(uint64_t v, ParseUint(text, "port", 65535));
  ref.value = static_cast<uint32_t>(v);
  return ref;
}

absl::StatusOr<FaultConfig> ParseFaultSpec(std::string_view spec, std::optional<PortRef>* port) {
  FaultConfig f;
  port->reset();
  const std::string lowered = Lower(S(spec));
  if (lowered == "clear" || lowered == "none") return f;
  for (const std::string& item : Split(spec, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("fault '", item, "' is not KEY=VALUE (see --help)"));
    }
    const std::string key = Lower(item.substr(0, eq)), value = item.substr(eq + 1);
    const std::string what = absl::StrCat("fault ", key);
    if (key == "port") {
      ASSIGN_OR_RETURN(PortRef ref, ParsePortRef(value));
      *port = ref;
    } else if (key == "cut-after") {
      ASSIGN_OR_RETURN(f.cut_after, ParseUint(value, what));
    } else if (key == "delay") {
      ASSIGN_OR_RETURN(uint64_t v, ParseUint(value, what, 3'600'000));
      f.delay_ms = static_cast<uint32_t>(v);
    } else if (key == "keep-alive-delay") {
      ASSIGN_OR_RETURN(uint64_t v, ParseUint(value, what, 3'600'000));
      f.keep_alive_delay_ms = static_cast<uint32_t>(v);
    } else if (key == "drop-every") {
      ASSIGN_OR_RETURN(f.drop_every, ParseUint(value, what));
    } else if (key == "corrupt-digest") {
      ASSIGN_OR_RETURN(f.corrupt_digest, ParseUint(value, what));
    } else if (key == "term-req" || key == "termreq") {
      ASSIGN_OR_RETURN(f.term_req, ParseUint(value, what));
    } else if (key == "error") {
      ASSIGN_OR_RETURN(f.error_count, ParseUint(value, what));
    } else if (key == "status") {
      ASSIGN_OR_RETURN(f.error_status, ParseStatusName(value));
    } else if (key == "admin") {
      ASSIGN_OR_RETURN(f.admin, ParseBool(value, what));
    } else if (key == "malice") {
      std::optional<Malice> m = ParseMalice(value);
      if (!m) {
        std::string kinds;
        for (Malice k : AllMalice())
          absl::StrAppend(&kinds, kinds.empty() ? "" : ", ", ToString(k));
        return absl::InvalidArgumentError(
            absl::StrCat("unknown malice '", value, "' (one of: ", kinds, ")"));
      }
      f.malice = *m;
    } else if (key == "malice-after") {
      ASSIGN_OR_RETURN(f.malice_after, ParseUint(value, what));
    } else if (key == "malice-times") {
      ASSIGN_OR_RETURN(f.malice_times, ParseUint(value, what));
    } else if (key == "cpda") {
      ASSIGN_OR_RETURN(uint64_t v, ParseUint(value, what, 31));
      f.cpda = static_cast<uint8_t>(v);
    } else if (key == "maxh2cdata") {
      ASSIGN_OR_RETURN(f.maxh2cdata, ParseSize32(value, what));
    } else if (key == "r2t-chunk") {
      ASSIGN_OR_RETURN(f.r2t_chunk, ParseSize32(value, what));
    } else if (key == "max-r2t") {
      ASSIGN_OR_RETURN(uint64_t v, ParseUint(value, what, 65536));
      f.max_r2t = static_cast<uint32_t>(v);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown fault '", key,
          "' (cut-after, delay, keep-alive-delay, drop-every, corrupt-digest, term-req, "
          "error, status, "
          "admin, malice, "
          "malice-after, malice-times, cpda, maxh2cdata, r2t-chunk, max-r2t, port)"));
    }
  }
  RETURN_IF_ERROR(Validate(f));
  return f;
}

std::string UsageText() {
  return R"(Usage: nvmf-target [OPTIONS]
A small userspace NVMe/TCP target (a test peer for nvmf-ublk). Prints "listening on ADDR:PORT" for
each port once it accepts connections; exits on SIGINT/SIGTERM or the "quit" control command.

Ports and subsystems:
  --listen ADDR:PORT        listen here (repeatable; IPv6 as [ADDR]:PORT; port 0 = ephemeral;
                            0.0.0.0 / [::] = all addresses). Default 127.0.0.1:4420.
  --subsystem NQN           start a subsystem; --ns/--host/--serial/--model/--subsys-port after
                            it apply to it (an --ns before any --subsystem creates
                            nqn.2026-01.io.nvmf-ublk:target)
  --ns SPEC                 namespace: ram:SIZE[:BS] | null:SIZE[:BS] | file:PATH[:BS]
                            [,nsid=N][,ana-group=G][,size=SIZE][,nguid=HEX32][,uuid=UUID]
                            [,eui64=HEX16]; BS 512 (default), 1024, 2048 or 4096
  --host NQN                allow this host NQN (repeatable; default: any host)
  --host-key NQN,key=DHHC-1:..[,ctrl-key=DHHC-1:..][,hash=sha256:..][,dhgroup=null:ffdhe2048:..]
                            the host must authenticate (DH-HMAC-CHAP) with this secret; with
                            ctrl-key the controller proves itself when asked; hash and dhgroup
                            restrict what the controller accepts (preferred first)
  --serial SN, --model MN   Identify strings of the current subsystem
  --subsys-port N           export the current subsystem only on the N-th --listen (0-based;
                            repeatable; default: every port)
  --referral ADDR:PORT[,portid=N]   discovery referral to another discovery controller
  --ana PORT:GROUP:STATE    initial ANA state (optimized, non-optimized, inaccessible,
                            persistent-loss, change); PORT is a TCP port or #N for the N-th --listen

Controller and transport:
  --queue-size N            largest SQ (CAP.MQES + 1), default 128
  --max-io-queues N         I/O queues granted at most, default 64
  --in-capsule SIZE         in-capsule data for I/O queues (IOCCSZ), default 8K
  --mdts N                  MDTS (2^N x 4 KiB; 0 = no limit), default 8 (1 MiB)
  --no-vwc                  report no volatile write cache
  --ana-group-max N         ANAGRPMAX / NANAGRPID, default 32
  --anatt S                 ANATT (ANA transition time, s), default 10
  --cqt MS                  CQT (command quiesce time, ms, TP 4129), default 0
  --tbkas                   traffic-based keep-alive (CTRATT.TBKAS): any command restarts KATO
  --dmrl N, --dmrsl N       Dataset Management limits reported in Identify CNS 06h
  --cpda N                  CPDA in ICResp (0..31), default 0
  --maxh2cdata SIZE         MAXH2CDATA in ICResp (>= 4096), default 128K
  --r2t-chunk SIZE          bytes per R2T (0 = whole transfer), default 0
  --max-r2t N               R2Ts outstanding per command (also bounded by the host's MAXR2T)
  --c2h-chunk SIZE          largest C2HData PDU, default 128K
  --c2h-success             complete reads with the C2HData SUCCESS flag (queues without SQ flow
                            control only)
  --no-header-digest, --no-data-digest   refuse digests the host requests

Faults (target-wide, or one port with port=PORT); also at run time with the "fault" command:
  --fault KEY=VALUE[,KEY=VALUE...]
      cut-after=N       close each connection when its (N+1)-th command arrives
      delay=MS          hold every response MS milliseconds
      keep-alive-delay=MS  hold Keep Alive answers MS milliseconds (admin=1 not needed)
      drop-every=N      never answer every N-th command (Abort can still complete it)
      corrupt-digest=N  the next N reads get a wrong C2HData data digest (with DDGST only)
      term-req=N        the next N commands are answered by a C2HTermReq, then the close
      error=N           the next N commands fail with status=... (default ana-inaccessible)
      status=S          ana-inaccessible | ana-loss | ana-transition | path | dnr | transient |
                        SCT:SC[:dnr]
      admin=1           faults also hit admin commands (not fabrics commands or AERs)
      malice=KIND       a deliberate protocol violation, on a command it fits (a read for the
                        c2h-* kinds, an R2T write for r2t-*, any for resp-*/cid-*; icresp-* on
                        the next ICResp; identify-*, discovery-*, ana-* put an out-of-range
                        value in the next such admin answer); the connection stays open for the
                        host's H2CTermReq.
                        KIND: resp-plen-below-hlen resp-plen-wrong resp-hlen-wrong cid-unknown
                        cid-next-generation duplicate-resp unknown-pdu-type stall-mid-pdu
                        header-digest-bad term-req-mid-data c2h-plen-huge c2h-pdo-in-header
                        c2h-pdo-past-plen c2h-beyond-length c2h-gap c2h-overlap c2h-out-of-order
                        c2h-after-resp c2h-success-with-sqfc r2t-on-read read-done-early
                        c2h-on-write r2t-plen-wrong r2t-beyond-length r2t-overlap r2t-reused-ttag
                        r2t-too-many write-done-before-r2t write-done-after-half icresp-pfv
                        icresp-cpda icresp-maxh2cdata-small icresp-maxh2cdata-unaligned
                        identify-nn-0 identify-lbads-40 identify-nsze-0 discovery-numrec-big
                        ana-ngrps-big
      malice-after=N    only after N commands of the connection (default 0)
      malice-times=N    how many times in all (default 1; 0 = every fitting command)
      cpda=N, maxh2cdata=SIZE, r2t-chunk=SIZE, max-r2t=N   transport overrides for new
                        connections
    Faults count I/O queue commands per connection; "next N" budgets are shared by the scope.

Runtime control and logging:
  --control PATH            read control commands from FIFO PATH (created if missing); "-" = stdin
  --log-level LEVEL         debug, info (default), warning, error
  -v                        same as --log-level debug
  -h, --help                this text

Control commands (one per line):
  ana PORT GROUP STATE      set an ANA group's state on a port (sends ANA change AENs)
  fault [port=PORT,]KEY=VALUE[,...]   replace the faults of a port or of the whole target
  fault clear               remove every fault
  referral add|del ADDR:PORT
  status                    ports, controllers, namespaces and counters
  quit                      stop the target and exit

Sizes take K, M, G, T suffixes (powers of 1024).
)";
}

namespace {

// A bad value inside an option's callback: CLI11 reports it as "FLAG: MESSAGE".
void Check(const std::string& flag, const absl::Status& s) {
  if (s.ok()) return;
  const std::string m(s.message());
  if (m.rfind(flag, 0) == 0) throw CLI::ValidationError(m);  // it names the flag already
  throw CLI::ValidationError(flag, m);
}
template <typename T>
T Value(const std::string& flag, absl::StatusOr<T> v) {
  Check(flag, v.status());
  return *std::move(v);
}

}  // namespace

absl::StatusOr<CliOptions> ParseCommandLine(const std::vector<std::string>& args) {
  CliOptions o;
  TargetConfig& c = o.config;
  // Index of the subsystem that --ns/--host/... apply to (an index: push_back moves elements).
  std::optional<size_t> current;
  auto subsystem = [&]() -> SubsystemConfig* {
    if (!current) {
      c.subsystems.push_back(SubsystemConfig{});
      c.subsystems.back().nqn = kDefaultNqn;
      current = c.subsystems.size() - 1;
    }
    return &c.subsystems[*current];
  };

  // CLI11 does the parsing; every option's callback runs as its occurrence is parsed
  // (trigger_on_parse), so --ns, --host, ... apply to the --subsystem before them. --help prints
  // UsageText(), which documents each flag with its sub-syntax (the descriptions here stay empty).
  CLI::App app{"nvmf-target", "nvmf-target"};
  app.set_help_flag();
  // Each occurrence of OPTION calls fn(flag, value), in command-line order.
  auto option = [&](const std::string& name, std::function<void(const std::string&)> fn) {
    const std::string flag = name.substr(0, name.find(','));
    app.add_option_function<std::string>(
           name, [flag, fn](const std::string& v) { fn(v); }, "")
        ->trigger_on_parse()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  };
  auto flag = [&](const std::string& name, std::function<void()> fn) {
    app.add_flag_function(
           name, [fn](std::int64_t) { fn(); }, "")
        ->trigger_on_parse();
  };
  auto uint_option = [&](const std::string& name, auto* field, uint64_t max) {
    option(name, [name, field, max](const std::string& v) {
      *field = static_cast<std::remove_reference_t<decltype(*field)>>(
          Value(name, ParseUint(v, name, max)));
    });
  };
  auto size_option = [&](const std::string& name, uint32_t* field) {
    option(name,
           [name, field](const std::string& v) { *field = Value(name, ParseSize32(v, name)); });
  };

  flag("-h,--help", [&] { o.help = true; });
  flag("-v", [&] { o.log_level = LogLevel::kDebug; });
  option("--log-level", [&](const std::string& v) {
    if (!ParseLogLevel(v, &o.log_level)) {
      throw CLI::ValidationError("--log-level", absl::StrCat("unknown level '", v, "'"));
    }
  });
  option("--listen", [&](const std::string& v) {
    auto hp = Value("--listen", ParseHostPort(v));
    PortConfig p;
    p.address = hp.first;
    p.port = hp.second;
    c.ports.push_back(std::move(p));
  });
  option("--subsystem", [&](const std::string& v) {
    Check("--subsystem", ValidateNqn(v));
    c.subsystems.push_back(SubsystemConfig{});
    c.subsystems.back().nqn = v;
    current = c.subsystems.size() - 1;
  });
  option("--ns", [&](const std::string& v) {
    subsystem()->namespaces.push_back(Value("--ns", ParseNamespaceSpec(v)));
  });
  option("--host", [&](const std::string& v) {
    Check("--host", ValidateNqn(v));
    subsystem()->allowed_hosts.push_back(v);
  });
  option("--host-key", [&](const std::string& v) {
    const std::vector<std::string> parts = Split(v, ',');
    HostAuthConfig h;
    h.hostnqn = parts[0];
    Check("--host-key", ValidateNqn(h.hostnqn));
    for (size_t k = 1; k < parts.size(); ++k) {
      const std::string& p = parts[k];
      auto list = [&](const std::string& text, bool hashes) {
        std::vector<uint8_t> ids;
        for (const std::string& name : Split(text, ':')) {
          int found = -1;
          for (int id = 0; id <= 5; ++id) {
            const char* known =
                hashes ? (id >= 1 && id <= 3 ? auth::ToString(static_cast<auth::HashId>(id)) : "")
                       : auth::ToString(static_cast<auth::DhGroup>(id));
            if (name == known) found = id;
          }
          if (found < 0) {
            throw CLI::ValidationError(
                "--host-key",
                absl::StrCat("unknown ", hashes ? "hash" : "DH group", " '", name, "'"));
          }
          ids.push_back(static_cast<uint8_t>(found));
        }
        return ids;
      };
      if (p.rfind("key=", 0) == 0) {
        h.key = p.substr(4);
      } else if (p.rfind("ctrl-key=", 0) == 0) {
        h.ctrl_key = p.substr(9);
      } else if (p.rfind("hash=", 0) == 0) {
        h.hashes = list(p.substr(5), true);
      } else if (p.rfind("dhgroup=", 0) == 0) {
        h.dhgroups = list(p.substr(8), false);
      } else {
        throw CLI::ValidationError("--host-key",
                                   absl::StrCat("unknown option '", p.substr(0, p.find('=')),
                                                "' (key=, ctrl-key=, hash=, dhgroup=)"));
      }
    }
    if (h.key.empty()) throw CLI::ValidationError("--host-key", "key=DHHC-1:... is required");
    subsystem()->host_auth.push_back(std::move(h));
  });
  option("--serial", [&](const std::string& v) {
    if (v.size() > 20) throw CLI::ValidationError("--serial", "at most 20 characters");
    subsystem()->serial = v;
  });
  option("--model", [&](const std::string& v) {
    if (v.size() > 40) throw CLI::ValidationError("--model", "at most 40 characters");
    subsystem()->model = v;
  });
  option("--subsys-port", [&](const std::string& v) {
    subsystem()->ports.push_back(
        static_cast<size_t>(Value("--subsys-port", ParseUint(v, "--subsys-port", 1024))));
  });
  option("--referral", [&](const std::string& v) {
    const std::vector<std::string> parts = Split(v, ',');
    auto hp = Value("--referral", ParseHostPort(parts[0]));
    ReferralConfig r;
    r.address = hp.first;
    r.port = hp.second;
    for (size_t k = 1; k < parts.size(); ++k) {
      if (parts[k].rfind("portid=", 0) != 0) {
        throw CLI::ValidationError("--referral",
                                   absl::StrCat("unknown option '", parts[k], "' (portid=N)"));
      }
      r.port_id = static_cast<uint16_t>(
          Value("--referral", ParseUint(parts[k].substr(7), "portid", 0xFFFF)));
    }
    c.referrals.push_back(r);
  });
  option("--ana", [&](const std::string& v) {
    const std::vector<std::string> parts = Split(v, ':');
    if (parts.size() != 3) {
      throw CLI::ValidationError("--ana", absl::StrCat("'", v, "' is not PORT:GROUP:STATE"));
    }
    const PortRef ref = Value("--ana", ParsePortRef(parts[0]));
    const uint64_t group = Value("--ana", ParseUint(parts[1], "group", 0xFFFF));
    std::optional<AnaState> state = ParseAnaState(parts[2]);
    if (!state) {
      throw CLI::ValidationError("--ana", absl::StrCat("unknown ANA state '", parts[2], "'"));
    }
    o.ana.emplace_back(ref, static_cast<uint32_t>(group), *state);
  });
  uint_option("--queue-size", &c.queue_size, 65535);
  uint_option("--max-io-queues", &c.max_io_queues, 65534);
  size_option("--in-capsule", &c.in_capsule_data);
  uint_option("--mdts", &c.mdts, 255);
  flag("--no-vwc", [&] { c.volatile_write_cache = false; });
  uint_option("--ana-group-max", &c.ana_group_max, 65535);
  uint_option("--anatt", &c.anatt, 255);
  uint_option("--cqt", &c.cqt, 65535);
  flag("--tbkas", [&] { c.tbkas = true; });
  uint_option("--dmrl", &c.dsm_range_limit, 255);
  uint_option("--dmrsl", &c.dsm_range_size_limit, UINT32_MAX);
  uint_option("--cpda", &c.transport.cpda, 31);
  size_option("--maxh2cdata", &c.transport.maxh2cdata);
  size_option("--r2t-chunk", &c.transport.r2t_chunk);
  uint_option("--max-r2t", &c.transport.max_r2t, 65536);
  size_option("--c2h-chunk", &c.transport.c2h_chunk);
  flag("--c2h-success", [&] { c.transport.c2h_success = true; });
  flag("--no-header-digest", [&] { c.transport.allow_header_digest = false; });
  flag("--no-data-digest", [&] { c.transport.allow_data_digest = false; });
  option("--fault", [&](const std::string& v) {
    std::optional<PortRef> port;
    FaultConfig f = Value("--fault", ParseFaultSpec(v, &port));
    if (port) {
      o.port_faults.emplace_back(*port, f);
    } else {
      c.fault = f;
    }
  });
  option("--control", [&](const std::string& v) { o.control = v; });

  // CLI11 wants argv order reversed in a vector.
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ExtrasError& e) {
    return absl::InvalidArgumentError(absl::StrCat(e.what(), " (see --help)"));
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  if (c.ports.empty()) {
    PortConfig p;
    p.address = "127.0.0.1";
    p.port = 4420;
    c.ports.push_back(p);
  }
  if (absl::Status s = Validate(c.transport); !s.ok()) return s;
  for (const auto& [ref, group, state] : o.ana) {
    if (ref.by_index && ref.value >= c.ports.size()) {
      return absl::InvalidArgumentError(absl::StrCat("--ana: no port #", ref.value));
    }
  }
  // Initial ANA states of ports named by configured TCP port go straight into the config.
  for (auto it = o.ana.begin(); it != o.ana.end();) {
    const auto& [ref, group, state] = *it;
    std::optional<size_t> index;
    if (ref.by_index) {
      index = ref.value;
    } else {
      for (size_t p = 0; p < c.ports.size(); ++p) {
        if (c.ports[p].port == ref.value && ref.value != 0) index = p;
      }
    }
    if (!index) {
      return absl::InvalidArgumentError(absl::StrCat("--ana: no --listen with port ", ref.value));
    }
    c.ports[*index].ana_states[group] = state;
    it = o.ana.erase(it);
  }
  return o;
}

absl::StatusOr<size_t> ResolvePort(const Target& target, const PortRef& ref) {
  const std::vector<uint16_t> ports = target.ports();
  if (ref.by_index) {
    if (ref.value >= ports.size()) {
      return absl::InvalidArgumentError(absl::StrCat("no port #", ref.value));
    }
    return static_cast<size_t>(ref.value);
  }
  std::optional<size_t> index = target.PortIndex(static_cast<uint16_t>(ref.value));
  if (!index) return absl::InvalidArgumentError(absl::StrCat("no port ", ref.value));
  return *index;
}

absl::StatusOr<std::string> RunControlCommand(Target& target, std::string_view line, bool* quit) {
  std::vector<std::string> words;
  std::istringstream in{S(line)};
  for (std::string w; in >> w;) words.push_back(w);
  if (words.empty() || words[0][0] == '#') return std::string();
  const std::string cmd = Lower(words[0]);
  if (cmd == "quit" || cmd == "exit") {
    *quit = true;
    return std::string("bye");
  }
  if (cmd == "help") return UsageText();
  if (cmd == "status" || cmd == "stats") return target.DescribeState();
  if (cmd == "ana") {
    if (words.size() != 4) return absl::InvalidArgumentError("usage: ana PORT GROUP STATE");
    ASSIGN_OR_RETURN(PortRef ref, ParsePortRef(words[1]));
    ASSIGN_OR_RETURN(size_t port, ResolvePort(target, ref));
    ASSIGN_OR_RETURN(uint64_t group, ParseUint(words[2], "ANA group", 0xFFFF));
    std::optional<AnaState> state = ParseAnaState(words[3]);
    if (!state) {
      return absl::InvalidArgumentError(absl::StrCat("unknown ANA state '", words[3], "'"));
    }
    RETURN_IF_ERROR(target.SetAnaState(port, static_cast<uint32_t>(group), *state));
    return absl::StrCat("port ", target.ports()[port], " group ", group, " ", ToString(*state));
  }
  if (cmd == "fault") {
    if (words.size() != 2) {
      return absl::InvalidArgumentError("usage: fault [port=PORT,]KEY=VALUE[,...] | fault clear");
    }
    std::optional<PortRef> ref;
    ASSIGN_OR_RETURN(FaultConfig f, ParseFaultSpec(words[1], &ref));
    if (f.empty() && !ref) {
      target.ClearFaults();
      return std::string("faults cleared");
    }
    std::optional<size_t> port;
    if (ref) {
      ASSIGN_OR_RETURN(size_t p, ResolvePort(target, *ref));
      port = p;
    }
    RETURN_IF_ERROR(target.SetFault(f, port));
    return absl::StrCat("fault set", port ? absl::StrCat(" on port ", target.ports()[*port]) : "");
  }
  if (cmd == "referral") {
    if (words.size() != 3 || (words[1] != "add" && words[1] != "del")) {
      return absl::InvalidArgumentError("usage: referral add|del ADDR:PORT");
    }
    ASSIGN_OR_RETURN(auto hp, ParseHostPort(words[2]));
    if (words[1] == "add") {
      ReferralConfig r;
      r.address = hp.first;
      r.port = hp.second;
      RETURN_IF_ERROR(target.AddReferral(r));
    } else {
      RETURN_IF_ERROR(target.RemoveReferral(hp.first, hp.second));
    }
    return absl::StrCat("discovery generation ", target.discovery_generation());
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown command '", words[0], "' (ana, fault, referral, status, quit, help)"));
}

}  // namespace nvmf_ublk::target
