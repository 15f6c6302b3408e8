// libFuzzer target: the SMTP command parser, line buffer, data reader and PROXY header parser
// must take any bytes without crashing; a parsed command must never be refused and accepted at
// once; a PROXY header is never longer than its input, and its every proper prefix asks for
// more (the server reads until the header is complete).
#include <cstdint>
#include <string_view>

#include "net/proxy_protocol.hpp"
#include "smtp/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto parsed = mailroster::smtp::parse_command(bytes);
  if (parsed.command && parsed.error.code != 0) __builtin_trap();
  if (!parsed.command && parsed.error.code < 500) __builtin_trap();

  mailroster::smtp::LineBuffer lines;
  lines.append(bytes);
  mailroster::smtp::Limits limits;
  mailroster::smtp::DataReader reader(limits);
  while (auto line = lines.next(limits.text_line)) {
    if (line->text.size() > limits.text_line) __builtin_trap();
    if (reader.add(*line)) break;
  }
  (void)mailroster::smtp::parse_reply(bytes);

  using Status = mailroster::net::ProxyParse::Status;
  const auto proxy = mailroster::net::parse_proxy_header(bytes);
  if (proxy.status == Status::done) {
    if (proxy.consumed == 0 || proxy.consumed > size) __builtin_trap();
    if (proxy.consumed > mailroster::net::kMaxProxyHeader) __builtin_trap();
    for (std::size_t n = 0; n < proxy.consumed; ++n) {
      if (mailroster::net::parse_proxy_header(bytes.substr(0, n)).status != Status::need_more)
        __builtin_trap();
    }
  } else if (proxy.status == Status::invalid && proxy.error.empty()) {
    __builtin_trap();
  }
  return 0;
}
