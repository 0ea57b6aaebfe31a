#include "auth/dhchap_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/endian.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace nvmf_ublk::auth {

uint32_t Crc32(ByteView data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t b : data) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

absl::StatusOr<KeyText> ParseKeyText(std::string_view text, std::string_view prefix, int max_hh,
                                     std::string_view what,
                                     absl::FunctionRef<std::string(int hh, size_t n)> size_error) {
  const std::string kind(what);
  if (text.substr(0, prefix.size()) != prefix) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a ", kind, ": it must start with '", std::string(prefix), "'"));
  }
  text.remove_prefix(prefix.size());
  if (text.size() < 3 || text[2] != ':' || text[0] != '0' || text[1] < '0' ||
      text[1] > '0' + max_hh) {
    std::string allowed;
    for (int i = 0; i <= max_hh; ++i) {
      absl::StrAppend(&allowed, i == 0 ? "" : i == max_hh ? " or " : ", ", "0", i);
    }
    return absl::InvalidArgumentError(absl::StrCat("bad ", kind, ": the hash field after '",
                                                   std::string(prefix), "' must be ", allowed));
  }
  KeyText out;
  out.hh = text[1] - '0';
  text.remove_prefix(3);
  if (!text.empty() && text.back() == ':') text.remove_suffix(1);
  if (text.find(':') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("bad ", kind, ": extra ':' in the key field"));
  }
  std::string raw;
  if (text.empty() || text.size() % 4 != 0 ||
      !absl::Base64Unescape(absl::string_view(text.data(), text.size()), &raw)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad ", kind, ": the key field is not valid base64"));
  }
  out.key.assign(raw.begin(), raw.end());
  std::fill(raw.begin(), raw.end(), '\0');
  const size_t n = out.key.size() < 4 ? 0 : out.key.size() - 4;
  if (std::string want = size_error(out.hh, n); out.key.size() < 4 || !want.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("bad ", kind, ": ", out.key.size(),
                                                   " bytes after base64 decoding; ", want,
                                                   " and its 4-byte CRC expected"));
  }
  if (Crc32(ByteView(out.key.data(), n)) != LoadLe32(out.key.data() + n)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad ", kind, ": its CRC does not match (a mistyped or truncated key?)"));
  }
  out.key.resize(n);
  return out;
}

std::string FormatKeyText(std::string_view prefix, int hh, ByteView key) {
  Bytes buf(key.begin(), key.end());
  buf.resize(buf.size() + 4);
  StoreLe32(buf.data() + key.size(), Crc32(key));
  std::string out = absl::StrFormat("%s%02d:", std::string(prefix), hh);
  out +=
      absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()));
  out += ':';
  Wipe(buf);
  return out;
}

absl::StatusOr<DhchapKey> ParseDhchapKey(std::string_view text) {
  ASSIGN_OR_RETURN(
      KeyText k,
      ParseKeyText(text, "DHHC-1:", 3, "DH-HMAC-CHAP key", [](int, size_t n) -> std::string {
        return n == 32 || n == 48 || n == 64 ? "" : "a 32, 48 or 64-byte secret";
      }));
  return DhchapKey(static_cast<HashId>(k.hh), std::move(k.key));
}

std::string FormatDhchapKey(const DhchapKey& key) {
  return FormatKeyText("DHHC-1:", static_cast<int>(key.transform), key.secret);
}

Bytes TransformKey(const DhchapKey& key, std::string_view nqn) {
  if (key.transform == HashId::kNone) return key.secret;
  return Hmac(key.transform, key.secret, {View(nqn), View("NVMe-over-Fabrics")});
}

absl::StatusOr<DhchapKey> GenerateDhchapKey(HashId transform, size_t length, Bytes secret,
                                            std::string_view nqn) {
  if (length != 32 && length != 48 && length != 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("key length ", length, " is not 32, 48 or 64 bytes"));
  }
  if (HashLength(transform) != 0 && HashLength(transform) != length) {
    return absl::InvalidArgumentError(absl::StrCat("a key transformed with ", ToString(transform),
                                                   " is ", HashLength(transform),
                                                   " bytes long, not ", length));
  }
  if (secret.empty()) secret = RandomBytes(length);
  if (secret.size() != length) {
    return absl::InvalidArgumentError(
        absl::StrCat("the secret is ", secret.size(), " bytes, not the key length ", length));
  }
  DhchapKey key(transform, std::move(secret));
  if (transform != HashId::kNone) {
    if (nqn.empty()) return absl::InvalidArgumentError("a transformed key needs an NQN");
    Bytes t = TransformKey(key, nqn);
    Wipe(key.secret);
    key.secret = std::move(t);
  }
  return key;
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    return absl::NotFoundError(
        absl::StrCat("cannot open secret file ", path, ": ", strerror(errno)));
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("secret file ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "secret file %s has mode %04o: it must not be accessible by group or others (chmod 600)",
        path, static_cast<unsigned>(st.st_mode & 07777)));
  }
  std::string text(4096, '\0');
  ssize_t n = read(fd.get(), text.data(), text.size());
  if (n < 0) {
    return absl::InternalError(
        absl::StrCat("cannot read secret file ", path, ": ", strerror(errno)));
  }
  text.resize(static_cast<size_t>(n));
  const size_t eol = text.find_first_of("\r\n");
  if (eol != std::string::npos) text.resize(eol);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.pop_back();
  if (text.empty())
    return absl::InvalidArgumentError(absl::StrCat("secret file ", path, " is empty"));
  return text;
}

}  // namespace nvmf_ublk::auth
