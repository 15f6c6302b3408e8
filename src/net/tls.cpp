#include "net/tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ctime>

#include "core/error.hpp"

namespace mailroster::net {

namespace ssl = boost::asio::ssl;

namespace {

std::string subject_of(X509* cert) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) {
    return {};
  }
  char* data = nullptr;
  const auto n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::chrono::system_clock::time_point not_after_of(X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

ServerTls::ServerTls(std::string what, std::string cert_file, std::string key_file)
    : what_(std::move(what)),
      enabled_(!cert_file.empty()),
      cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)) {}

void ServerTls::load() {
  const auto [cert_file, key_file] = [this] {
    std::lock_guard lock(mutex_);
    return std::pair{cert_file_, key_file_};
  }();
  load(cert_file, key_file);
}

void ServerTls::load(const std::string& cert_file, const std::string& key_file) {
  if (!enabled()) return;
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  context->use_certificate_chain_file(cert_file, ec);
  if (!ec) context->use_private_key_file(key_file, ssl::context::pem, ec);
  // The key is checked against the certificate as it is loaded; said again here, plainly.
  if (!ec && SSL_CTX_check_private_key(context->native_handle()) != 1) {
    ec = boost::system::error_code(static_cast<int>(ERR_get_error()),
                                   boost::asio::error::get_ssl_category());
  }
  ERR_clear_error();
  if (ec) {
    throw core::Failure(core::ErrorCode::invalid_argument,
                        what_ + ": cannot use TLS certificate '" + cert_file + "' with key '" +
                            key_file + "': " + ec.message());
  }
  X509* cert = SSL_CTX_get0_certificate(context->native_handle());
  Certificate certificate{subject_of(cert), not_after_of(cert)};
  std::lock_guard lock(mutex_);
  context_ = std::move(context);
  certificate_ = std::move(certificate);
  cert_file_ = cert_file;
  key_file_ = key_file;
}

std::shared_ptr<ssl::context> ServerTls::context() const {
  std::lock_guard lock(mutex_);
  return context_;
}

ServerTls::Certificate ServerTls::certificate() const {
  std::lock_guard lock(mutex_);
  return certificate_;
}

}  // namespace mailroster::net
