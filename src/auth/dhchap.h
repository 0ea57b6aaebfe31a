// The DH-HMAC-CHAP exchange of one queue (NVMe Base 2.0 §8.13.5), both roles, sans-I/O: each side
// turns the received message into the next one to send. The host runs it on every queue (admin
// and I/O) whose Connect response asks for authentication (AUTHREQ), after every (re)connect.
//
//   host                                   controller
//   Auth Send    AUTH_Negotiate      ->    (hashes, DH groups offered)
//   Auth Receive DH-HMAC-CHAP_Challenge <- hash, group, C1, S1, g^y
//   Auth Send    DH-HMAC-CHAP_Reply  ->    R1 = HMAC(Kh, Ca1 || S1 || T || 0 || "HostHost" || NQNh
//                                               || 0 || NQNc), [C2, S2 when bidirectional], g^x
//   Auth Receive DH-HMAC-CHAP_Success1  <- [R2 = HMAC(Kc, Ca2 || S2 || T || 0 || "Controller" ||
//                                               NQNc || 0 || NQNh)]
//   Auth Send    DH-HMAC-CHAP_Success2 ->  (bidirectional only, after R2 checked)
//
// Kh / Kc are the transformed host and controller keys (dhchap_key.h); Cax is Cx itself with the
// null group, else HMAC(H(g^xy mod p), Cx). Either side may answer with Failure1 (controller) or
// Failure2 (host) and a reason; the transaction then fails.
#ifndef NVMF_UBLK_AUTH_DHCHAP_H_
#define NVMF_UBLK_AUTH_DHCHAP_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "auth/crypto.h"
#include "auth/dhchap_key.h"

namespace nvmf_ublk::auth {

// What a host holds to authenticate one association.
struct DhchapHostConfig {
  DhchapKey host_key;
  std::optional<DhchapKey> ctrl_key;  // set: bidirectional (the controller must prove itself)
  // Offered in this order of preference (defaults: all, like the kernel host).
  std::vector<HashId> hashes = {HashId::kSha256, HashId::kSha384, HashId::kSha512};
  std::vector<DhGroup> dhgroups = {DhGroup::kNull,      DhGroup::kFfdhe2048, DhGroup::kFfdhe3072,
                                   DhGroup::kFfdhe4096, DhGroup::kFfdhe6144, DhGroup::kFfdhe8192};
};

class DhchapHost {
 public:
  enum class Step {
    kSendNegotiate,
    kReceiveChallenge,
    kSendReply,
    kReceiveSuccess1,
    kSendSuccess2,
    kSendFailure2,  // then kFailed with the reason kept
    kDone,
    kFailed,
  };
  static const char* ToString(Step s);
  // The largest message the host accepts (Auth Receive allocation length): a Challenge with a
  // SHA-512 C1 and an ffdhe8192 value is 1104 bytes.
  static constexpr uint32_t kReceiveSize = 4096;

  DhchapHost(std::shared_ptr<const DhchapHostConfig> config, std::string hostnqn,
             std::string subnqn, uint16_t transaction);
  ~DhchapHost();

  Step step() const { return step_; }
  bool sending() const {
    return step_ == Step::kSendNegotiate || step_ == Step::kSendReply ||
           step_ == Step::kSendSuccess2 || step_ == Step::kSendFailure2;
  }
  // The message to send in a send step.
  const Bytes& outgoing() const { return out_; }
  // The Auth Send of outgoing() completed with success.
  void OnSent();
  // The Auth Receive completed with success and returned `msg` (at most kReceiveSize bytes).
  void OnReceived(ByteView msg);
  // An Auth Send / Receive failed (NVMe status or transport): the exchange ends with `why`.
  void OnCommandFailed(const absl::Status& why);
  // OK once kDone; the reason once kFailed (kUnauthenticated for an authentication failure,
  // kFailedPrecondition for no common hash or group, kDataLoss for a malformed message).
  const absl::Status& result() const { return result_; }
  HashId hash() const { return hash_; }
  DhGroup dhgroup() const { return group_; }
  bool bidirectional() const { return config_->ctrl_key.has_value(); }

 private:
  void SetStep(Step next);
  void Fail(absl::Status why, uint8_t reason);  // -> kSendFailure2
  void FailNow(absl::Status why);               // -> kFailed, nothing sent
  void OnChallenge(ByteView msg);
  void OnSuccess1(ByteView msg);
  // Returns false (after failing) unless `msg` is the expected message of this transaction.
  bool CheckHeader(ByteView msg, uint8_t want_id, size_t min_size, const char* name);

  std::shared_ptr<const DhchapHostConfig> config_;
  std::string hostnqn_, subnqn_;
  uint16_t tid_;
  Step step_ = Step::kSendNegotiate;
  absl::Status result_;
  absl::Status pending_failure_;
  Bytes out_;
  HashId hash_ = HashId::kNone;
  DhGroup group_ = DhGroup::kNull;
  Bytes session_;  // g^xy mod p (empty with the null group)
  Bytes c2_;
  uint32_t s2_ = 0;
};

// The controller side, for tools/nvmf-target.
struct DhchapControllerConfig {
  DhchapKey host_key;                 // the key the host must prove
  std::optional<DhchapKey> ctrl_key;  // the key this controller proves when the host asks
  std::vector<HashId> hashes = {HashId::kSha256, HashId::kSha384, HashId::kSha512};
  std::vector<DhGroup> dhgroups = {DhGroup::kNull,      DhGroup::kFfdhe2048, DhGroup::kFfdhe3072,
                                   DhGroup::kFfdhe4096, DhGroup::kFfdhe6144, DhGroup::kFfdhe8192};
};

class DhchapController {
 public:
  enum class Step {
    kWaitNegotiate,
    kSendChallenge,
    kWaitReply,
    kSendSuccess1,
    kSendFailure1,
    kWaitSuccess2,
    kDone,
    kFailed,
  };
  DhchapController(std::shared_ptr<const DhchapControllerConfig> config, std::string hostnqn,
                   std::string subnqn);
  ~DhchapController();
  Step step() const { return step_; }
  bool authenticated() const { return step_ == Step::kDone; }
  // An Auth Send payload. A message out of turn leads to Failure1 (incorrect message).
  void OnSend(ByteView msg);
  // The payload of the next Auth Receive; nullopt when none is due (the command then fails).
  std::optional<Bytes> OnReceive();
  const std::string& failure() const { return failure_; }  // why it failed, for logs

 private:
  void Failure1(uint8_t exp, std::string why);

  std::shared_ptr<const DhchapControllerConfig> config_;
  std::string hostnqn_, subnqn_;
  Step step_ = Step::kWaitNegotiate;
  uint16_t tid_ = 0;
  HashId hash_ = HashId::kNone;
  DhGroup group_ = DhGroup::kNull;
  std::optional<DhKeyPair> dh_;
  Bytes c1_;
  uint32_t s1_ = 0;
  Bytes ctrl_response_;  // R2, when the host sent a challenge
  uint8_t failure_exp_ = 0;
  std::string failure_;
};

}  // namespace nvmf_ublk::auth

#endif  // NVMF_UBLK_AUTH_DHCHAP_H_
