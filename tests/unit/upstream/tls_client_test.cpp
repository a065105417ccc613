// The TLS set-up shared by the REST client and the conversation WebSocket, on OpenSSL handles
// (the handshakes themselves are tested over loopback in http_client_test and engine_test).
#include "upstream/tls_client.hpp"

#include "support/http_client.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

namespace callgate::upstream {
namespace {

using ContextPtr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
using SslPtr = std::unique_ptr<SSL, decltype(&SSL_free)>;

ContextPtr NewContext() {
  return ContextPtr(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
}

TEST(TlsClient, ContextVerifiesPeersWithTls12OrLater) {
  auto context = NewContext();
  ConfigureClientTls(context.get(), "", "test");
  EXPECT_EQ(SSL_CTX_get_verify_mode(context.get()), SSL_VERIFY_PEER);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(context.get()), TLS1_2_VERSION);
}

TEST(TlsClient, ACaBundleIsLoadedOrIsAClearError) {
  callgate::testing::TempDir dir;
  const auto cert = callgate::testing::MakeTestCertificate(dir.path().string());
  ASSERT_FALSE(cert.cert_file.empty()) << "openssl could not make a certificate";
  auto context = NewContext();
  EXPECT_NO_THROW(ConfigureClientTls(context.get(), cert.cert_file, "test"));

  const std::string missing = (dir.path() / "missing.pem").string();
  auto other = NewContext();
  try {
    ConfigureClientTls(other.get(), missing, "test");
    ADD_FAILURE() << "a missing bundle was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot load the CA bundle " + missing), std::string::npos)
        << e.what();
  }
}

TEST(TlsClient, ANameGetsSniAndAHostCheckAnAddressOnlyTheCheck) {
  auto context = NewContext();
  ConfigureClientTls(context.get(), "", "test");

  SslPtr named(SSL_new(context.get()), &SSL_free);
  EXPECT_EQ(PrepareClientTls(named.get(), "api.elevenlabs.io"), "");
  ASSERT_NE(SSL_get_servername(named.get(), TLSEXT_NAMETYPE_host_name), nullptr);
  EXPECT_STREQ(SSL_get_servername(named.get(), TLSEXT_NAMETYPE_host_name), "api.elevenlabs.io");
  EXPECT_STREQ(SSL_get0_peername(named.get()), nullptr) << "no handshake yet";
  EXPECT_STREQ(X509_VERIFY_PARAM_get0_host(SSL_get0_param(named.get()), 0), "api.elevenlabs.io");

  SslPtr addressed(SSL_new(context.get()), &SSL_free);
  EXPECT_EQ(PrepareClientTls(addressed.get(), "127.0.0.1"), "");
  EXPECT_EQ(SSL_get_servername(addressed.get(), TLSEXT_NAMETYPE_host_name), nullptr)
      << "no SNI for an address";
  EXPECT_EQ(X509_VERIFY_PARAM_get0_host(SSL_get0_param(addressed.get()), 0), nullptr);

  SslPtr v6(SSL_new(context.get()), &SSL_free);
  EXPECT_EQ(PrepareClientTls(v6.get(), "::1"), "");
  EXPECT_EQ(SSL_get_servername(v6.get(), TLSEXT_NAMETYPE_host_name), nullptr);
}

TEST(TlsClient, NoCertificateFailureBeforeAHandshake) {
  auto context = NewContext();
  SslPtr ssl(SSL_new(context.get()), &SSL_free);
  EXPECT_EQ(CertificateFailure(ssl.get()), "");
}

}  // namespace
}  // namespace callgate::upstream
