// DH-HMAC-CHAP messages carried by Authentication Send / Receive (NVMe Base 2.0 §8.13.5, Figures
// 589-596; the kernel's include/linux/nvme.h names them nvmf_auth_dhchap_*_data). Plain wire
// structures; the variable parts follow each header.
#ifndef NVMF_UBLK_AUTH_DHCHAP_MESSAGES_H_
#define NVMF_UBLK_AUTH_DHCHAP_MESSAGES_H_

#include <cstddef>
#include <cstdint>

#include "base/endian.h"

namespace nvmf_ublk::auth {

// Authentication Send / Receive CDW10: SECP (security protocol) 0xE9 = NVMe in-band
// authentication, SPSP0 = SPSP1 = 0x01 (DH-HMAC-CHAP).
inline constexpr uint8_t kSecpAuth = 0xE9;
inline constexpr uint32_t kAuthCdw10 = (uint32_t{kSecpAuth} << 24) | (1u << 16) | (1u << 8);

// AUTH-TYPE.
inline constexpr uint8_t kAuthTypeCommon = 0x00;  // Negotiate, Failure1, Failure2
inline constexpr uint8_t kAuthTypeDhchap = 0x01;  // Challenge, Reply, Success1, Success2
// AUTH-ID.
inline constexpr uint8_t kMsgNegotiate = 0x00;
inline constexpr uint8_t kMsgChallenge = 0x01;
inline constexpr uint8_t kMsgReply = 0x02;
inline constexpr uint8_t kMsgSuccess1 = 0x03;
inline constexpr uint8_t kMsgSuccess2 = 0x04;
inline constexpr uint8_t kMsgFailure2 = 0xF0;
inline constexpr uint8_t kMsgFailure1 = 0xF1;
inline constexpr uint8_t kAuthIdDhchap = 0x01;  // protocol descriptor AUTHID

// Failure reason code and its explanations (Base 2.0 Figure 596).
inline constexpr uint8_t kReasonFailed = 0x01;
inline constexpr uint8_t kExpFailed = 0x01;            // authentication failed
inline constexpr uint8_t kExpNotUsable = 0x02;         // protocol not usable
inline constexpr uint8_t kExpConcatMismatch = 0x03;    // secure channel concatenation mismatch
inline constexpr uint8_t kExpHashUnusable = 0x04;      // no usable hash function
inline constexpr uint8_t kExpDhGroupUnusable = 0x05;   // no usable DH group
inline constexpr uint8_t kExpIncorrectPayload = 0x06;  // a field is wrong
inline constexpr uint8_t kExpIncorrectMessage = 0x07;  // an unexpected message
const char* ExplainFailure(uint8_t rescode_exp);

struct AuthHeader {
  uint8_t auth_type;
  uint8_t auth_id;
  uint8_t rsvd[2];
  Le16 t_id;  // transaction ID
};
static_assert(sizeof(AuthHeader) == 6);

struct DhchapProtocolDescriptor {
  uint8_t authid;  // 01h DH-HMAC-CHAP
  uint8_t rsvd;
  uint8_t halen;  // hash IDs in idlist[0..29]
  uint8_t dhlen;  // DH group IDs in idlist[30..59]
  uint8_t idlist[60];
};
static_assert(sizeof(DhchapProtocolDescriptor) == 64);
inline constexpr size_t kDhGroupListOffset = 30;

struct NegotiateMsg {
  AuthHeader h;
  uint8_t sc_c;  // secure channel concatenation (0: none)
  uint8_t napd;  // number of protocol descriptors
  DhchapProtocolDescriptor desc[1];
};
static_assert(sizeof(NegotiateMsg) == 72 && offsetof(NegotiateMsg, desc) == 8);

struct ChallengeMsg {
  AuthHeader h;
  uint8_t hl;  // hash length
  uint8_t rsvd;
  uint8_t hashid;
  uint8_t dhgid;
  Le16 dhvlen;
  Le32 seqnum;  // S1
  // cval[hl] (C1), then dhv[dhvlen] (the controller's g^y mod p)
};
static_assert(sizeof(ChallengeMsg) == 16 && offsetof(ChallengeMsg, seqnum) == 12);

struct ReplyMsg {
  AuthHeader h;
  uint8_t hl;
  uint8_t rsvd;
  uint8_t cvalid;  // 1: C2 holds the host's challenge (bidirectional)
  uint8_t rsvd2;
  Le16 dhvlen;
  Le32 seqnum;  // S2 (0 without a host challenge)
  // rval[hl] (the host's response), cval[hl] (C2), dhv[dhvlen] (g^x mod p)
};
static_assert(sizeof(ReplyMsg) == 16 && offsetof(ReplyMsg, cvalid) == 8);

struct Success1Msg {
  AuthHeader h;
  uint8_t hl;
  uint8_t rsvd;
  uint8_t rvalid;  // 1: rval holds the controller's response to C2
  uint8_t rsvd2[7];
  // rval[hl]
};
static_assert(sizeof(Success1Msg) == 16 && offsetof(Success1Msg, rvalid) == 8);

struct Success2Msg {
  AuthHeader h;
  uint8_t rsvd[10];
};
static_assert(sizeof(Success2Msg) == 16);

struct FailureMsg {
  AuthHeader h;
  uint8_t rescode;
  uint8_t rescode_exp;
};
static_assert(sizeof(FailureMsg) == 8);

}  // namespace nvmf_ublk::auth

#endif  // NVMF_UBLK_AUTH_DHCHAP_MESSAGES_H_
