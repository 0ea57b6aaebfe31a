#include "auth/tls_handshake.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "auth/tls_psk.h"
#include "base/log.h"
#include "base/status.h"

namespace nvmf_ublk::auth {
namespace {

const uint8_t kSuiteSha256[2] = {0x13, 0x01};  // TLS_AES_128_GCM_SHA256
const uint8_t kSuiteSha384[2] = {0x13, 0x02};  // TLS_AES_256_GCM_SHA384

std::string TakeSslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += r ? r : absl::StrCat("error ", e);
  }
  return out.empty() ? "unknown TLS error" : out;
}

SSL_SESSION* PskSession(SSL* ssl, ByteView key, HashId hash) {
  const SSL_CIPHER* cipher =
      SSL_CIPHER_find(ssl, hash == HashId::kSha384 ? kSuiteSha384 : kSuiteSha256);
  SSL_SESSION* s = SSL_SESSION_new();
  if (cipher == nullptr || s == nullptr ||
      SSL_SESSION_set1_master_key(s, key.data(), key.size()) != 1 ||
      SSL_SESSION_set_cipher(s, cipher) != 1 ||
      SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
    SSL_SESSION_free(s);
    return nullptr;
  }
  return s;
}

}  // namespace

struct TlsHandshake::Impl {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  BIO* rbio = nullptr;  // owned by ssl
  BIO* wbio = nullptr;  // owned by ssl
  ~Impl() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
};

TlsHandshake::TlsHandshake() : impl_(std::make_unique<Impl>()) {}
TlsHandshake::~TlsHandshake() {
  Wipe(psk_);
  Wipe(client_secret_);
  Wipe(server_secret_);
}

namespace {

TlsHandshake* Self(const SSL* ssl) { return static_cast<TlsHandshake*>(SSL_get_app_data(ssl)); }

}  // namespace

absl::StatusOr<std::unique_ptr<TlsHandshake>> TlsHandshake::Client(std::string identity, Bytes psk,
                                                                   HashId hash) {
  if (hash != HashId::kSha256 && hash != HashId::kSha384) {
    return absl::InvalidArgumentError("a TLS PSK is SHA-256 or SHA-384");
  }
  if (psk.size() != HashLength(hash)) {
    return absl::InvalidArgumentError("the TLS PSK's length does not match its hash");
  }
  std::unique_ptr<TlsHandshake> h(new TlsHandshake());
  h->identity_ = std::move(identity);
  h->psk_ = std::move(psk);
  h->hash_ = hash;
  RETURN_IF_ERROR(h->Init(false));
  return h;
}

absl::StatusOr<std::unique_ptr<TlsHandshake>> TlsHandshake::Server(TlsPskLookup lookup) {
  std::unique_ptr<TlsHandshake> h(new TlsHandshake());
  h->server_ = true;
  h->lookup_ = std::move(lookup);
  RETURN_IF_ERROR(h->Init(true));
  return h;
}

absl::Status TlsHandshake::Init(bool server) {
  Impl& im = *impl_;
  im.ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (im.ctx == nullptr) return absl::InternalError(absl::StrCat("TLS: ", TakeSslError()));
  SSL_CTX_set_min_proto_version(im.ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(im.ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(im.ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(im.ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(im.ctx, 0);
  const char* suites = server                     ? "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"
                       : hash_ == HashId::kSha384 ? "TLS_AES_256_GCM_SHA384"
                                                  : "TLS_AES_128_GCM_SHA256";
  if (SSL_CTX_set_ciphersuites(im.ctx, suites) != 1) {
    return absl::InternalError(absl::StrCat("TLS cipher suites: ", TakeSslError()));
  }
  // The application traffic secrets, for kernel TLS (OpenSSL 3.0 offloads only sending).
  SSL_CTX_set_keylog_callback(im.ctx, [](const SSL* ssl, const char* line) {
    TlsHandshake* self = Self(ssl);
    std::string_view l(line);
    Bytes* dest = nullptr;
    if (absl::StartsWith(absl::string_view(l.data(), l.size()), "CLIENT_TRAFFIC_SECRET_0 ")) {
      dest = &self->client_secret_;
    } else if (absl::StartsWith(absl::string_view(l.data(), l.size()),
                                "SERVER_TRAFFIC_SECRET_0 ")) {
      dest = &self->server_secret_;
    }
    if (dest == nullptr) return;
    const size_t sp = l.rfind(' ');
    std::string raw =
        absl::HexStringToBytes(absl::string_view(l.data() + sp + 1, l.size() - sp - 1));
    dest->assign(raw.begin(), raw.end());
    std::fill(raw.begin(), raw.end(), '\0');
  });
  if (server) {
    SSL_CTX_set_psk_find_session_callback(
        im.ctx, [](SSL* ssl, const unsigned char* id, size_t len, SSL_SESSION** sess) -> int {
          TlsHandshake* self = Self(ssl);
          *sess = nullptr;
          self->identity_.assign(reinterpret_cast<const char*>(id), len);
          std::optional<TlsServerPsk> k = self->lookup_(self->identity_);
          if (!k) return 1;  // unknown: the handshake fails (no other way to authenticate)
          self->hash_ = k->hash;
          *sess = PskSession(ssl, k->key, k->hash);
          Wipe(k->key);
          return *sess != nullptr ? 1 : 0;
        });
  } else {
    SSL_CTX_set_psk_use_session_callback(
        im.ctx,
        [](SSL* ssl, const EVP_MD* md, const unsigned char** id, size_t* idlen,
           SSL_SESSION** sess) -> int {
          TlsHandshake* self = Self(ssl);
          *sess = nullptr;
          const char* want = self->hash_ == HashId::kSha384 ? "SHA384" : "SHA256";
          // A second call (after a HelloRetryRequest) names the server's hash: offer nothing
          // that does not fit it.
          if (md != nullptr && !EVP_MD_is_a(md, want)) return 1;
          *sess = PskSession(ssl, self->psk_, self->hash_);
          if (*sess == nullptr) return 0;
          *id = reinterpret_cast<const unsigned char*>(self->identity_.data());
          *idlen = self->identity_.size();
          return 1;
        });
  }
  im.ssl = SSL_new(im.ctx);
  im.rbio = BIO_new(BIO_s_mem());
  im.wbio = BIO_new(BIO_s_mem());
  if (im.ssl == nullptr || im.rbio == nullptr || im.wbio == nullptr) {
    BIO_free(im.rbio);
    BIO_free(im.wbio);
    return absl::InternalError(absl::StrCat("TLS: ", TakeSslError()));
  }
  SSL_set_bio(im.ssl, im.rbio, im.wbio);
  SSL_set_app_data(im.ssl, this);
  if (server) {
    SSL_set_accept_state(im.ssl);
  } else {
    SSL_set_connect_state(im.ssl);
  }
  return absl::OkStatus();
}

absl::Status TlsHandshake::Start() {
  if (server_) return absl::OkStatus();
  return Step();
}

absl::Status TlsHandshake::Feed(ByteView in) {
  if (done_) return absl::OkStatus();
  if (!in.empty() && BIO_write(impl_->rbio, in.data(), static_cast<int>(in.size())) !=
                         static_cast<int>(in.size())) {
    return absl::InternalError("TLS: buffering the peer's bytes failed");
  }
  return Step();
}

absl::Status TlsHandshake::Step() {
  const int rc = SSL_do_handshake(impl_->ssl);
  if (rc == 1) return Finish();
  const int err = SSL_get_error(impl_->ssl, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return absl::OkStatus();
  std::string why = TakeSslError();
  std::string hint;
  if (absl::StrContains(why, "unknown psk identity")) {
    hint = server_ ? " (no PSK for this identity)"
                   : absl::StrCat(" (the target has no PSK for identity '", identity_, "')");
  } else if (absl::StrContains(why, "decrypt error") || absl::StrContains(why, "bad binder") ||
             absl::StrContains(why, "binder does not verify")) {
    hint = " (the PSKs differ: a wrong key for this identity?)";
  } else if (absl::StrContains(why, "no shared cipher") ||
             absl::StrContains(why, "handshake failure")) {
    hint = server_ ? " (no PSK for this identity, or no common cipher suite)"
                   : " (the target did not accept the PSK identity or the cipher suite)";
  }
  return absl::UnauthenticatedError(absl::StrCat("TLS handshake failed: ", why, hint));
}

absl::Status TlsHandshake::Finish() {
  const SSL_CIPHER* c = SSL_get_current_cipher(impl_->ssl);
  hash_ = c != nullptr && SSL_CIPHER_get_id(c) == 0x03001302 ? HashId::kSha384 : HashId::kSha256;
  if (!SSL_session_reused(impl_->ssl)) {
    return absl::UnauthenticatedError("TLS handshake completed without the PSK");
  }
  if (client_secret_.empty() || server_secret_.empty()) {
    return absl::InternalError("TLS: the traffic secrets were not reported");
  }
  const size_t key_len = hash_ == HashId::kSha384 ? 32 : 16;
  auto fill = [&](const Bytes& secret, TlsTrafficKeys* k) {
    k->key = HkdfExpandLabelOnly(hash_, secret, "key", {}, key_len);
    k->iv = HkdfExpandLabelOnly(hash_, secret, "iv", {}, 12);
    k->seq = 0;
  };
  fill(server_ ? server_secret_ : client_secret_, &tx_);
  fill(server_ ? client_secret_ : server_secret_, &rx_);
  Wipe(client_secret_);
  Wipe(server_secret_);
  done_ = true;
  return absl::OkStatus();
}

Bytes TlsHandshake::TakeOutput() {
  Bytes out(BIO_ctrl_pending(impl_->wbio));
  if (!out.empty()) {
    const int n = BIO_read(impl_->wbio, out.data(), static_cast<int>(out.size()));
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  return out;
}

absl::StatusOr<Bytes> TlsHandshake::SealRecordWithOpenSsl(ByteView plaintext) {
  if (!done_) return absl::FailedPreconditionError("TLS handshake not done");
  if (SSL_write(impl_->ssl, plaintext.data(), static_cast<int>(plaintext.size())) <= 0) {
    return absl::InternalError(absl::StrCat("SSL_write: ", TakeSslError()));
  }
  return TakeOutput();
}

size_t TlsHandshake::trailing_bytes() const { return BIO_ctrl_pending(impl_->rbio); }

}  // namespace nvmf_ublk::auth
