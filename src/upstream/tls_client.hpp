// The TLS settings of every connection callgate makes to ElevenLabs (the REST client in
// beast_client.cpp, the conversation WebSocket in conversation/detail/ws_transport.cpp), on
// OpenSSL's own handles so that this header stays free of Asio and Beast.
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>

namespace callgate::upstream {

// A client context: TLS 1.2 or later, the peer's certificate verified against the system CA
// store and, when `ca_file` is set, that PEM bundle too (how the tests trust the simulator).
// A system store that cannot be loaded is a warning naming `who`; a bundle that cannot be
// loaded throws std::runtime_error naming the file.
void ConfigureClientTls(SSL_CTX* context, const std::string& ca_file, std::string_view who);

// Before the handshake of one connection to `host` (a DNS name or an IP address): SNI for a
// name, and the certificate must be for that name or address, or the handshake fails with
// X509_V_ERR_HOSTNAME_MISMATCH / X509_V_ERR_IP_ADDRESS_MISMATCH. Empty on success, else why not.
std::string PrepareClientTls(SSL* ssl, const std::string& host);

// After a failed handshake: " (<why the certificate was refused>)", or "" when it was not.
std::string CertificateFailure(const SSL* ssl);

}  // namespace callgate::upstream
