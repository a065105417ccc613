#include "upstream/tls_client.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

namespace callgate::upstream {
namespace {

// The oldest error OpenSSL queued, in words; the queue is left empty.
std::string TakeOpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

}  // namespace

void ConfigureClientTls(SSL_CTX* context, const std::string& ca_file, std::string_view who) {
  SSL_CTX_set_options(context, SSL_OP_ALL);
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  if (SSL_CTX_set_default_verify_paths(context) != 1) {
    spdlog::warn("{}: cannot load the system CA store: {}", who, TakeOpenSslError());
  }
  if (!ca_file.empty() && SSL_CTX_load_verify_locations(context, ca_file.c_str(), nullptr) != 1) {
    throw std::runtime_error("cannot load the CA bundle " + ca_file + ": " + TakeOpenSslError());
  }
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
}

std::string PrepareClientTls(SSL* ssl, const std::string& host) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1) return {};  // an address: no SNI
  ERR_clear_error();
  // SSL_set_tlsext_host_name is a macro with an old-style cast; this is its expansion.
  if (SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(host.c_str())) != 1) {
    return "cannot set SNI for " + host + ": " + TakeOpenSslError();
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set1_host(ssl, host.c_str()) != 1) {
    return "cannot check certificates against " + host + ": " + TakeOpenSslError();
  }
  return {};
}

std::string CertificateFailure(const SSL* ssl) {
  const long verify = SSL_get_verify_result(ssl);
  if (verify == X509_V_OK) return {};
  return std::string(" (") + X509_verify_cert_error_string(verify) + ")";
}

}  // namespace callgate::upstream
