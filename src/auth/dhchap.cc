#include "auth/dhchap.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "auth/dhchap_messages.h"
#include "base/endian.h"
#include "base/log.h"

namespace nvmf_ublk::auth {
namespace {

// Cax: the challenge itself with the null group, else HMAC(H(g^xy mod p), C) (Base 2.0
// §8.13.5.4: the augmented challenge).
Bytes Augment(HashId hash, const Bytes& session, ByteView challenge) {
  if (session.empty()) return Bytes(challenge.begin(), challenge.end());
  Bytes hashed = Hash(hash, session);
  Bytes out = Hmac(hash, hashed, {challenge});
  Wipe(hashed);
  return out;
}

// The response value: HMAC(K, Ca || S (LE32) || T (LE16) || SC_C (0) || role || nqn1 || 0 ||
// nqn2) with role "HostHost" (nqn1 = host) or "Controller" (nqn1 = subsystem).
Bytes Response(HashId hash, const DhchapKey& key, std::string_view key_nqn, const Bytes& session,
               ByteView challenge, uint32_t seqnum, uint16_t tid, std::string_view role,
               std::string_view nqn1, std::string_view nqn2) {
  Bytes k = TransformKey(key, key_nqn);
  Bytes ca = Augment(hash, session, challenge);
  uint8_t s[4], t[2];
  StoreLe32(s, seqnum);
  StoreLe16(t, tid);
  static const uint8_t kZero = 0;
  Bytes out = Hmac(
      hash, k,
      {ca, s, t, ByteView(&kZero, 1), View(role), View(nqn1), ByteView(&kZero, 1), View(nqn2)});
  Wipe(k);
  Wipe(ca);
  return out;
}

uint32_t NonZeroSeqnum() {
  for (;;) {
    Bytes r = RandomBytes(4);
    const uint32_t v = LoadLe32(r.data());
    if (v != 0) return v;
  }
}

template <typename Msg>
Msg* Header(Bytes& b, uint8_t type, uint8_t id, uint16_t tid) {
  Msg* m = reinterpret_cast<Msg*>(b.data());
  m->h.auth_type = type;
  m->h.auth_id = id;
  m->h.t_id.set(tid);
  return m;
}

Bytes FailureMessage(uint8_t id, uint16_t tid, uint8_t exp) {
  Bytes b(sizeof(FailureMsg), 0);
  FailureMsg* m = Header<FailureMsg>(b, kAuthTypeCommon, id, tid);
  m->rescode = kReasonFailed;
  m->rescode_exp = exp;
  return b;
}

}  // namespace

const char* ExplainFailure(uint8_t exp) {
  switch (exp) {
    case kExpFailed:
      return "authentication failed";
    case kExpNotUsable:
      return "authentication protocol not usable";
    case kExpConcatMismatch:
      return "secure channel concatenation mismatch";
    case kExpHashUnusable:
      return "no usable hash function";
    case kExpDhGroupUnusable:
      return "no usable DH group";
    case kExpIncorrectPayload:
      return "incorrect payload";
    case kExpIncorrectMessage:
      return "incorrect protocol message";
  }
  return "unknown reason";
}

// ------------------------------------------------------------------------------------- host

const char* DhchapHost::ToString(Step s) {
  switch (s) {
    case Step::kSendNegotiate:
      return "send-negotiate";
    case Step::kReceiveChallenge:
      return "receive-challenge";
    case Step::kSendReply:
      return "send-reply";
    case Step::kReceiveSuccess1:
      return "receive-success1";
    case Step::kSendSuccess2:
      return "send-success2";
    case Step::kSendFailure2:
      return "send-failure2";
    case Step::kDone:
      return "done";
    case Step::kFailed:
      return "failed";
  }
  return "?";
}

DhchapHost::DhchapHost(std::shared_ptr<const DhchapHostConfig> config, std::string hostnqn,
                       std::string subnqn, uint16_t transaction)
    : config_(std::move(config)),
      hostnqn_(std::move(hostnqn)),
      subnqn_(std::move(subnqn)),
      tid_(transaction) {
  out_.assign(sizeof(NegotiateMsg), 0);
  NegotiateMsg* m = Header<NegotiateMsg>(out_, kAuthTypeCommon, kMsgNegotiate, tid_);
  m->sc_c = 0;
  m->napd = 1;
  DhchapProtocolDescriptor& d = m->desc[0];
  d.authid = kAuthIdDhchap;
  d.halen = static_cast<uint8_t>(std::min<size_t>(config_->hashes.size(), kDhGroupListOffset));
  d.dhlen = static_cast<uint8_t>(std::min<size_t>(config_->dhgroups.size(), kDhGroupListOffset));
  for (size_t i = 0; i < d.halen; ++i) d.idlist[i] = static_cast<uint8_t>(config_->hashes[i]);
  for (size_t i = 0; i < d.dhlen; ++i) {
    d.idlist[kDhGroupListOffset + i] = static_cast<uint8_t>(config_->dhgroups[i]);
  }
}

DhchapHost::~DhchapHost() {
  Wipe(session_);
  Wipe(c2_);
  Wipe(out_);
}

void DhchapHost::SetStep(Step next) {
  NLOG(DEBUG) << "DH-HMAC-CHAP T" << tid_ << ": " << ToString(step_) << " -> " << ToString(next);
  step_ = next;
}

void DhchapHost::Fail(absl::Status why, uint8_t reason) {
  pending_failure_ = std::move(why);
  out_ = FailureMessage(kMsgFailure2, tid_, reason);
  SetStep(Step::kSendFailure2);
}

void DhchapHost::FailNow(absl::Status why) {
  result_ = std::move(why);
  Wipe(out_);
  SetStep(Step::kFailed);
}

void DhchapHost::OnSent() {
  switch (step_) {
    case Step::kSendNegotiate:
      SetStep(Step::kReceiveChallenge);
      return;
    case Step::kSendReply:
      SetStep(Step::kReceiveSuccess1);
      return;
    case Step::kSendSuccess2:
      result_ = absl::OkStatus();
      Wipe(out_);
      SetStep(Step::kDone);
      return;
    case Step::kSendFailure2:
      FailNow(pending_failure_);
      return;
    default:
      return;
  }
}

void DhchapHost::OnCommandFailed(const absl::Status& why) {
  if (step_ == Step::kDone || step_ == Step::kFailed) return;
  if (step_ == Step::kSendFailure2) {
    FailNow(pending_failure_);
    return;
  }
  FailNow(why);
}

bool DhchapHost::CheckHeader(ByteView msg, uint8_t want_id, size_t min_size, const char* name) {
  if (msg.size() < sizeof(AuthHeader)) {
    FailNow(absl::DataLossError(absl::StrCat("authentication: the controller's answer is ",
                                             msg.size(), " bytes, too short for a message")));
    return false;
  }
  const auto* h = reinterpret_cast<const AuthHeader*>(msg.data());
  if (h->auth_type == kAuthTypeCommon && h->auth_id == kMsgFailure1 &&
      msg.size() >= sizeof(FailureMsg)) {
    const auto* f = reinterpret_cast<const FailureMsg*>(msg.data());
    const uint8_t exp = f->rescode_exp;
    std::string text;
    if (exp == kExpFailed) {
      text =
          "authentication failed: the controller rejected the host's response (is the "
          "DH-HMAC-CHAP secret the one configured for this host NQN on the target?)";
    } else if (exp == kExpHashUnusable) {
      text =
          "authentication failed: the controller supports none of the hash functions the "
          "host offered";
    } else if (exp == kExpDhGroupUnusable) {
      text =
          "authentication failed: the controller supports none of the DH groups the host "
          "offered";
    } else {
      text = absl::StrFormat("authentication failed: the controller reports: %s (code 0x%02x)",
                             ExplainFailure(exp), static_cast<int>(exp));
    }
    FailNow(exp == kExpHashUnusable || exp == kExpDhGroupUnusable
                ? absl::FailedPreconditionError(text)
                : absl::UnauthenticatedError(text));
    return false;
  }
  if (h->auth_type != kAuthTypeDhchap || h->auth_id != want_id) {
    Fail(absl::DataLossError(absl::StrFormat(
             "authentication: expected %s from the controller, got message type %02x/%02x", name,
             static_cast<int>(h->auth_type), static_cast<int>(h->auth_id))),
         kExpIncorrectMessage);
    return false;
  }
  if (h->t_id.get() != tid_) {
    Fail(absl::DataLossError(absl::StrFormat("authentication: %s names transaction %u, not %u",
                                             name, h->t_id.get(), tid_)),
         kExpIncorrectMessage);
    return false;
  }
  if (msg.size() < min_size) {
    Fail(absl::DataLossError(
             absl::StrCat("authentication: ", name, " is ", msg.size(), " bytes, too short")),
         kExpIncorrectPayload);
    return false;
  }
  return true;
}

void DhchapHost::OnReceived(ByteView msg) {
  if (step_ == Step::kReceiveChallenge) {
    OnChallenge(msg);
  } else if (step_ == Step::kReceiveSuccess1) {
    OnSuccess1(msg);
  }
}

void DhchapHost::OnChallenge(ByteView msg) {
  if (!CheckHeader(msg, kMsgChallenge, sizeof(ChallengeMsg), "DH-HMAC-CHAP_Challenge")) return;
  const auto* c = reinterpret_cast<const ChallengeMsg*>(msg.data());
  const HashId hash = static_cast<HashId>(c->hashid);
  const auto& offered = config_->hashes;
  if (HashLength(hash) == 0 || std::find(offered.begin(), offered.end(), hash) == offered.end()) {
    Fail(absl::DataLossError(absl::StrFormat(
             "authentication: the controller chose hash function %u, which the host did not offer",
             static_cast<unsigned>(c->hashid))),
         kExpHashUnusable);
    return;
  }
  if (c->hl != HashLength(hash)) {
    Fail(absl::DataLossError(
             absl::StrFormat("authentication: challenge length %u does not match %s (%u bytes)",
                             static_cast<unsigned>(c->hl), auth::ToString(hash),
                             static_cast<unsigned>(HashLength(hash)))),
         kExpIncorrectPayload);
    return;
  }
  const DhGroup group = static_cast<DhGroup>(c->dhgid);
  const auto& groups = config_->dhgroups;
  if (!KnownDhGroup(c->dhgid) || std::find(groups.begin(), groups.end(), group) == groups.end()) {
    Fail(absl::DataLossError(absl::StrFormat(
             "authentication: the controller chose DH group %u, which the host did not offer",
             static_cast<unsigned>(c->dhgid))),
         kExpDhGroupUnusable);
    return;
  }
  const size_t dhvlen = c->dhvlen.get();
  if (dhvlen != DhValueLength(group)) {
    Fail(absl::DataLossError(
             absl::StrFormat("authentication: DH value of %u bytes for group %s (%u expected)",
                             static_cast<unsigned>(dhvlen), auth::ToString(group),
                             static_cast<unsigned>(DhValueLength(group)))),
         kExpIncorrectPayload);
    return;
  }
  const size_t hl = c->hl;
  if (msg.size() < sizeof(ChallengeMsg) + hl + dhvlen) {
    Fail(absl::DataLossError(absl::StrCat("authentication: the challenge is ", msg.size(),
                                          " bytes, shorter than its fields say")),
         kExpIncorrectPayload);
    return;
  }
  hash_ = hash;
  group_ = group;
  const ByteView c1 = msg.subspan(sizeof(ChallengeMsg), hl);
  Bytes host_dh;
  if (group != DhGroup::kNull) {
    absl::StatusOr<DhKeyPair> pair = DhKeyPair::Generate(group);
    if (!pair.ok()) {
      Fail(pair.status(), kExpFailed);
      return;
    }
    absl::StatusOr<Bytes> shared =
        pair->SharedSecret(msg.subspan(sizeof(ChallengeMsg) + hl, dhvlen));
    if (!shared.ok()) {
      Fail(absl::DataLossError(absl::StrCat("authentication: ", shared.status().message())),
           kExpIncorrectPayload);
      return;
    }
    session_ = std::move(*shared);
    host_dh = pair->public_value();
  }
  Bytes r1 = Response(hash_, config_->host_key, hostnqn_, session_, c1, c->seqnum.get(), tid_,
                      "HostHost", hostnqn_, subnqn_);
  out_.assign(sizeof(ReplyMsg) + 2 * hl + host_dh.size(), 0);
  ReplyMsg* r = Header<ReplyMsg>(out_, kAuthTypeDhchap, kMsgReply, tid_);
  r->hl = static_cast<uint8_t>(hl);
  r->dhvlen.set(static_cast<uint16_t>(host_dh.size()));
  uint8_t* p = out_.data() + sizeof(ReplyMsg);
  std::memcpy(p, r1.data(), hl);
  Wipe(r1);
  if (config_->ctrl_key) {
    c2_ = RandomBytes(hl);
    s2_ = NonZeroSeqnum();
    r->cvalid = 1;
    std::memcpy(p + hl, c2_.data(), hl);
  }
  r->seqnum.set(s2_);
  if (!host_dh.empty()) std::memcpy(p + 2 * hl, host_dh.data(), host_dh.size());
  SetStep(Step::kSendReply);
}

void DhchapHost::OnSuccess1(ByteView msg) {
  if (!CheckHeader(msg, kMsgSuccess1, sizeof(Success1Msg), "DH-HMAC-CHAP_Success1")) return;
  const auto* s = reinterpret_cast<const Success1Msg*>(msg.data());
  const size_t hl = HashLength(hash_);
  if (s->hl != hl) {
    Fail(absl::DataLossError(absl::StrFormat("authentication: Success1 hash length %u, not %u",
                                             static_cast<unsigned>(s->hl),
                                             static_cast<unsigned>(hl))),
         kExpIncorrectPayload);
    return;
  }
  if (!config_->ctrl_key) {
    // Unidirectional: the controller accepted the host; nothing more to send (an unasked R2 is
    // ignored, as the kernel host does).
    result_ = absl::OkStatus();
    Wipe(out_);
    SetStep(Step::kDone);
    return;
  }
  if (s->rvalid == 0 || msg.size() < sizeof(Success1Msg) + hl) {
    Fail(absl::UnauthenticatedError(
             "authentication failed: the controller did not answer the host's challenge, so it "
             "could not be authenticated (bidirectional authentication with "
             "--dhchap-ctrl-secret)"),
         kExpFailed);
    return;
  }
  Bytes want = Response(hash_, *config_->ctrl_key, subnqn_, session_, c2_, s2_, tid_, "Controller",
                        subnqn_, hostnqn_);
  const bool ok = SecureEqual(want, msg.subspan(sizeof(Success1Msg), hl));
  Wipe(want);
  if (!ok) {
    Fail(absl::UnauthenticatedError(
             "authentication failed: the controller failed to authenticate itself (its response "
             "does not match --dhchap-ctrl-secret)"),
         kExpFailed);
    return;
  }
  out_.assign(sizeof(Success2Msg), 0);
  Header<Success2Msg>(out_, kAuthTypeDhchap, kMsgSuccess2, tid_);
  SetStep(Step::kSendSuccess2);
}

// ------------------------------------------------------------------------------- controller

DhchapController::DhchapController(std::shared_ptr<const DhchapControllerConfig> config,
                                   std::string hostnqn, std::string subnqn)
    : config_(std::move(config)), hostnqn_(std::move(hostnqn)), subnqn_(std::move(subnqn)) {}

DhchapController::~DhchapController() {
  Wipe(c1_);
  Wipe(ctrl_response_);
}

void DhchapController::Failure1(uint8_t exp, std::string why) {
  failure_exp_ = exp;
  failure_ = std::move(why);
  step_ = Step::kSendFailure1;
}

void DhchapController::OnSend(ByteView msg) {
  if (msg.size() < sizeof(AuthHeader)) {
    Failure1(kExpIncorrectPayload, "message too short");
    return;
  }
  const auto* h = reinterpret_cast<const AuthHeader*>(msg.data());
  if (h->auth_type == kAuthTypeCommon && h->auth_id == kMsgNegotiate) {
    // A Negotiate (re)starts the transaction.
    tid_ = h->t_id.get();
    dh_.reset();
    if (msg.size() < sizeof(NegotiateMsg)) {
      Failure1(kExpIncorrectPayload, "negotiate too short");
      return;
    }
    const auto* n = reinterpret_cast<const NegotiateMsg*>(msg.data());
    const DhchapProtocolDescriptor& d = n->desc[0];
    if (n->napd < 1 || d.authid != kAuthIdDhchap || n->sc_c != 0) {
      Failure1(n->sc_c != 0 ? kExpConcatMismatch : kExpNotUsable, "no DH-HMAC-CHAP descriptor");
      return;
    }
    const size_t halen = std::min<size_t>(d.halen, kDhGroupListOffset);
    const size_t dhlen = std::min<size_t>(d.dhlen, kDhGroupListOffset);
    hash_ = HashId::kNone;
    for (HashId want : config_->hashes) {
      if (std::find(d.idlist, d.idlist + halen, static_cast<uint8_t>(want)) != d.idlist + halen) {
        hash_ = want;
        break;
      }
    }
    if (hash_ == HashId::kNone) {
      Failure1(kExpHashUnusable, "no common hash function");
      return;
    }
    const uint8_t* groups = d.idlist + kDhGroupListOffset;
    bool found = false;
    for (DhGroup want : config_->dhgroups) {
      if (std::find(groups, groups + dhlen, static_cast<uint8_t>(want)) != groups + dhlen) {
        group_ = want;
        found = true;
        break;
      }
    }
    if (!found) {
      Failure1(kExpDhGroupUnusable, "no common DH group");
      return;
    }
    step_ = Step::kSendChallenge;
    return;
  }
  if (h->auth_type == kAuthTypeCommon && h->auth_id == kMsgFailure2) {
    failure_ = "the host sent Failure2";
    step_ = Step::kFailed;
    return;
  }
  if (h->t_id.get() != tid_ || h->auth_type != kAuthTypeDhchap) {
    Failure1(kExpIncorrectMessage, "unexpected message or transaction");
    return;
  }
  const size_t hl = HashLength(hash_);
  if (step_ == Step::kWaitReply && h->auth_id == kMsgReply) {
    const auto* r = reinterpret_cast<const ReplyMsg*>(msg.data());
    const size_t dhvlen = msg.size() >= sizeof(ReplyMsg) ? r->dhvlen.get() : 0;
    if (msg.size() < sizeof(ReplyMsg) || r->hl != hl ||
        msg.size() < sizeof(ReplyMsg) + 2 * hl + dhvlen || dhvlen != DhValueLength(group_)) {
      Failure1(kExpIncorrectPayload, "malformed reply");
      return;
    }
    const uint8_t* p = msg.data() + sizeof(ReplyMsg);
    Bytes session;
    if (dh_) {
      absl::StatusOr<Bytes> s = dh_->SharedSecret(ByteView(p + 2 * hl, dhvlen));
      if (!s.ok()) {
        Failure1(kExpIncorrectPayload, std::string(s.status().message()));
        return;
      }
      session = std::move(*s);
    }
    Bytes want = Response(hash_, config_->host_key, hostnqn_, session, c1_, s1_, tid_, "HostHost",
                          hostnqn_, subnqn_);
    const bool ok = SecureEqual(want, ByteView(p, hl));
    Wipe(want);
    if (!ok) {
      Wipe(session);
      Failure1(kExpFailed, "the host's response does not match its key");
      return;
    }
    Wipe(ctrl_response_);
    if (r->cvalid) {
      if (!config_->ctrl_key) {
        Wipe(session);
        Failure1(kExpFailed, "the host asks for bidirectional authentication; no controller key");
        return;
      }
      ctrl_response_ = Response(hash_, *config_->ctrl_key, subnqn_, session, ByteView(p + hl, hl),
                                r->seqnum.get(), tid_, "Controller", subnqn_, hostnqn_);
    }
    Wipe(session);
    step_ = Step::kSendSuccess1;
    return;
  }
  if (step_ == Step::kWaitSuccess2 && h->auth_id == kMsgSuccess2) {
    step_ = Step::kDone;
    return;
  }
  Failure1(kExpIncorrectMessage, "message out of turn");
}

std::optional<Bytes> DhchapController::OnReceive() {
  const size_t hl = HashLength(hash_);
  switch (step_) {
    case Step::kSendChallenge: {
      Bytes dhv;
      if (group_ != DhGroup::kNull) {
        absl::StatusOr<DhKeyPair> pair = DhKeyPair::Generate(group_);
        if (!pair.ok()) {
          Failure1(kExpFailed, std::string(pair.status().message()));
          return OnReceive();
        }
        dhv = pair->public_value();
        dh_ = std::move(*pair);
      }
      c1_ = RandomBytes(hl);
      s1_ = NonZeroSeqnum();
      Bytes b(sizeof(ChallengeMsg) + hl + dhv.size(), 0);
      ChallengeMsg* c = Header<ChallengeMsg>(b, kAuthTypeDhchap, kMsgChallenge, tid_);
      c->hl = static_cast<uint8_t>(hl);
      c->hashid = static_cast<uint8_t>(hash_);
      c->dhgid = static_cast<uint8_t>(group_);
      c->dhvlen.set(static_cast<uint16_t>(dhv.size()));
      c->seqnum.set(s1_);
      std::memcpy(b.data() + sizeof(ChallengeMsg), c1_.data(), hl);
      if (!dhv.empty()) std::memcpy(b.data() + sizeof(ChallengeMsg) + hl, dhv.data(), dhv.size());
      step_ = Step::kWaitReply;
      return b;
    }
    case Step::kSendSuccess1: {
      Bytes b(sizeof(Success1Msg) + hl, 0);
      Success1Msg* s = Header<Success1Msg>(b, kAuthTypeDhchap, kMsgSuccess1, tid_);
      s->hl = static_cast<uint8_t>(hl);
      if (!ctrl_response_.empty()) {
        s->rvalid = 1;
        std::memcpy(b.data() + sizeof(Success1Msg), ctrl_response_.data(), hl);
        step_ = Step::kWaitSuccess2;
      } else {
        step_ = Step::kDone;
      }
      return b;
    }
    case Step::kSendFailure1:
      step_ = Step::kFailed;
      return FailureMessage(kMsgFailure1, tid_, failure_exp_);
    default:
      return std::nullopt;
  }
}

}  // namespace nvmf_ublk::auth
