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

absl::StatusOr<DhchapKey> ParseDhchapKey(std::string_view text) {
  constexpr std::string_view kPrefix = "DHHC-1:";
  if (text.substr(0, kPrefix.size()) != kPrefix) {
    return absl::InvalidArgumentError("not a DH-HMAC-CHAP key: it must start with 'DHHC-1:'");
  }
  text.remove_prefix(kPrefix.size());
  if (text.size() < 3 || text[2] != ':' || text[0] != '0' || text[1] < '0' || text[1] > '3') {
    return absl::InvalidArgumentError(
        "bad DH-HMAC-CHAP key: the hash field after 'DHHC-1:' must be 00, 01, 02 or 03");
  }
  const HashId transform = static_cast<HashId>(text[1] - '0');
  text.remove_prefix(3);
  if (!text.empty() && text.back() == ':') text.remove_suffix(1);
  if (text.find(':') != std::string_view::npos) {
    return absl::InvalidArgumentError("bad DH-HMAC-CHAP key: extra ':' in the base64 field");
  }
  std::string raw;
  if (text.empty() || text.size() % 4 != 0 ||
      !absl::Base64Unescape(absl::string_view(text.data(), text.size()), &raw)) {
    return absl::InvalidArgumentError("bad DH-HMAC-CHAP key: the key field is not valid base64");
  }
  Bytes bytes(raw.begin(), raw.end());
  std::fill(raw.begin(), raw.end(), '\0');
  if (bytes.size() != 36 && bytes.size() != 52 && bytes.size() != 68) {
    const size_t n = bytes.size();
    Wipe(bytes);
    return absl::InvalidArgumentError(
        absl::StrCat("bad DH-HMAC-CHAP key: ", n,
                     " bytes after base64 decoding; a key holds a 32, 48 or "
                     "64-byte secret and its 4-byte CRC"));
  }
  const size_t len = bytes.size() - 4;
  const uint32_t want = LoadLe32(bytes.data() + len);
  if (Crc32(ByteView(bytes.data(), len)) != want) {
    Wipe(bytes);
    return absl::InvalidArgumentError(
        "bad DH-HMAC-CHAP key: its CRC does not match (a mistyped or truncated key?)");
  }
  bytes.resize(len);
  return DhchapKey(transform, std::move(bytes));
}

std::string FormatDhchapKey(const DhchapKey& key) {
  Bytes buf = key.secret;
  const uint32_t crc = Crc32(buf);
  buf.resize(buf.size() + 4);
  StoreLe32(buf.data() + key.secret.size(), crc);
  std::string out = absl::StrFormat("DHHC-1:%02d:", static_cast<int>(key.transform));
  out +=
      absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()));
  out += ':';
  Wipe(buf);
  return out;
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
