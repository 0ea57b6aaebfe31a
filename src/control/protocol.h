// JSON encoding of the control protocol (include/nvmf_ublk/control.h), shared by the client and
// the daemon so both sides agree on every field name.
#ifndef NVMF_UBLK_CONTROL_PROTOCOL_H_
#define NVMF_UBLK_CONTROL_PROTOCOL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "auth/dhchap.h"
#include "auth/tls_psk.h"
#include "nlohmann/json.hpp"
#include "nvmf_ublk/control.h"

namespace nvmf_ublk::control {

nlohmann::json ToJson(const ConnectArgs& a);
// Validates as it decodes: unknown transport, missing traddr/subnqn, out-of-range numbers.
absl::StatusOr<ConnectArgs> ConnectArgsFromJson(const nlohmann::json& j);
// The DH-HMAC-CHAP keys of `a` (null when it has none). Errors name the flag and what is wrong
// with the key, never the key itself.
absl::StatusOr<std::shared_ptr<const auth::DhchapHostConfig>> DhchapConfigFor(const ConnectArgs& a);
// The TLS PSK of `a` (null without --tls).
absl::StatusOr<std::shared_ptr<const auth::TlsPsk>> TlsPskFor(const ConnectArgs& a);

nlohmann::json ToJson(const ConnectAllArgs& a);
// The discovery controller's address and the connect options; subnqn is not needed.
absl::StatusOr<ConnectAllArgs> ConnectAllArgsFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const RecordResult& r);
nlohmann::json ToJson(const ConnectAllResult& r);
ConnectAllResult ConnectAllResultFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const DiscoveryControllerInfo& d);
DiscoveryControllerInfo DiscoveryControllerInfoFromJson(const nlohmann::json& j);

nlohmann::json ToJson(const PathInfo& p);
PathInfo PathInfoFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const DeviceInfo& d);
DeviceInfo DeviceInfoFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const ControllerSummary& c);
ControllerSummary ControllerSummaryFromJson(const nlohmann::json& j);

// {"ok": false, "code": "<absl code name>", "error": "<message>"}.
nlohmann::json ErrorReply(const absl::Status& status);
// A reply's status: OK for {"ok": true}, otherwise the code and message it carries.
absl::Status ReplyStatus(const nlohmann::json& reply);

// Parses one line of JSON into an object; kInvalidArgument with the parser's message otherwise.
absl::StatusOr<nlohmann::json> ParseObject(std::string_view line);

}  // namespace nvmf_ublk::control

#endif  // NVMF_UBLK_CONTROL_PROTOCOL_H_
