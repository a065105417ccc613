#include "support/ws_client.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <random>

namespace callgate::testing {
namespace {

std::string Base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

WsClient::WsClient(std::uint16_t port, const std::string& target,
                   const std::vector<std::pair<std::string, std::string>>& headers,
                   std::optional<TlsClientOptions> tls)
    : connection_(tls ? TcpConnection(port, *tls) : TcpConnection(port)) {
  if (!connection_.connected()) return;
  std::random_device random;
  unsigned char nonce[16];
  for (auto& byte : nonce)
    byte = static_cast<unsigned char>(random());
  const std::string key = Base64(nonce, sizeof nonce);
  auto all = headers;
  all.emplace_back("Upgrade", "websocket");
  all.emplace_back("Connection", "Upgrade");
  all.emplace_back("Sec-WebSocket-Key", key);
  all.emplace_back("Sec-WebSocket-Version", "13");
  if (!connection_.Send(BuildRequest("GET", target, all))) return;
  auto response = connection_.Read(std::chrono::seconds(10), false);
  if (!response) return;
  handshake_ = *response;
  handshake_status_ = response->status;
  if (response->status != 101) return;
  // Sec-WebSocket-Accept = base64(SHA1(key + GUID)), RFC 6455 §4.2.2.
  const std::string magic = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(magic.data()), magic.size(), digest);
  open_ = response->Header("sec-websocket-accept") == Base64(digest, sizeof digest);
}

bool WsClient::SendFrame(std::uint8_t opcode, const std::string& payload) {
  std::string frame;
  frame.push_back(static_cast<char>(0x80 | opcode));  // FIN
  const std::size_t size = payload.size();
  if (size < 126) {
    frame.push_back(static_cast<char>(0x80 | size));
  } else if (size <= 0xFFFF) {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>((size >> 8) & 0xFF));
    frame.push_back(static_cast<char>(size & 0xFF));
  } else {
    frame.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      frame.push_back(static_cast<char>((size >> shift) & 0xFF));
    }
  }
  std::random_device random;
  unsigned char mask[4];
  for (auto& byte : mask)
    byte = static_cast<unsigned char>(random());
  frame.append(reinterpret_cast<const char*>(mask), 4);
  for (std::size_t i = 0; i < size; ++i) {
    frame.push_back(static_cast<char>(static_cast<unsigned char>(payload[i]) ^ mask[i % 4]));
  }
  return connection_.Send(frame);
}

bool WsClient::SendText(const std::string& text) {
  return SendFrame(0x1, text);
}

bool WsClient::SendClose(std::uint16_t code, const std::string& reason) {
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload += reason;
  return SendFrame(0x8, payload);
}

std::optional<WsClient::Message> WsClient::Read(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Message message;
  std::string assembled;
  bool in_fragment = false;
  while (true) {
    std::string head;
    if (!connection_.ReadExact(2, head, deadline)) return std::nullopt;
    const auto b0 = static_cast<unsigned char>(head[0]);
    const auto b1 = static_cast<unsigned char>(head[1]);
    const bool fin = (b0 & 0x80) != 0;
    const std::uint8_t opcode = b0 & 0x0F;
    if ((b1 & 0x80) != 0) return std::nullopt;  // servers must not mask (RFC 6455 §5.1)
    std::uint64_t size = b1 & 0x7F;
    std::string ext;
    if (size == 126) {
      if (!connection_.ReadExact(2, ext, deadline)) return std::nullopt;
      size = (static_cast<std::uint64_t>(static_cast<unsigned char>(ext[0])) << 8) |
             static_cast<unsigned char>(ext[1]);
    } else if (size == 127) {
      if (!connection_.ReadExact(8, ext, deadline)) return std::nullopt;
      size = 0;
      for (char c : ext)
        size = (size << 8) | static_cast<unsigned char>(c);
    }
    std::string payload;
    if (!connection_.ReadExact(static_cast<std::size_t>(size), payload, deadline)) {
      return std::nullopt;
    }
    switch (opcode) {
      case 0x9:  // ping -> pong with the same payload
        SendFrame(0xA, payload);
        continue;
      case 0xA:  // unsolicited pong
        continue;
      case 0x8:
        message.kind = Message::Kind::kClose;
        message.close_code =
            payload.size() >= 2
                ? static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                             static_cast<unsigned char>(payload[1]))
                : 1005;
        message.data = payload.size() > 2 ? payload.substr(2) : std::string();
        SendClose(message.close_code == 1005 ? 1000 : message.close_code);  // echo
        // Like real clients: once the close handshake is done, close the TCP connection
        // (RFC 6455 §7.1.1; the server is waiting for it).
        connection_.Close();
        return message;
      case 0x1:
      case 0x2:
        message.kind = opcode == 0x1 ? Message::Kind::kText : Message::Kind::kBinary;
        assembled = payload;
        in_fragment = !fin;
        break;
      case 0x0:
        if (!in_fragment) return std::nullopt;
        assembled += payload;
        in_fragment = !fin;
        break;
      default:
        return std::nullopt;
    }
    if (!in_fragment) {
      message.data = std::move(assembled);
      return message;
    }
  }
}

}  // namespace callgate::testing
