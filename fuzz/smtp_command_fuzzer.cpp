// libFuzzer target: the SMTP command parser, line buffer, data reader and PROXY header parser
// must take any bytes without crashing; a parsed command must never be refused and accepted at
// once; a PROXY header is never longer than its input, and its every proper prefix asks for
// more (the server reads until the header is complete). BDAT chunks: where the chunks split
// the message changes nothing, and a message taken is what was sent (ending in CRLF).
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
  (void)mailroster::smtp::parse_bdat(bytes);

  // The same bytes as one chunk, and as two split where the first byte says.
  mailroster::smtp::Limits small;
  small.message_size = 2048;
  small.text_line = 80;
  mailroster::smtp::ChunkReader whole(small);
  whole.add(bytes);
  mailroster::smtp::ChunkReader split(small);
  const std::size_t at = size == 0 ? 0 : data[0] % (size + 1);
  split.add(bytes.substr(0, at));
  split.add(bytes.substr(at));
  const auto refused = whole.refusal();
  const auto refused_split = split.refusal();
  if (refused.has_value() != refused_split.has_value()) __builtin_trap();
  if (refused && refused->text != refused_split->text) __builtin_trap();
  const auto message = whole.take_message();
  if (message != split.take_message()) __builtin_trap();
  if (!refused) {
    if (!message.empty() && !message.ends_with("\r\n")) __builtin_trap();
    if (message.substr(0, size) != bytes) __builtin_trap();
  }

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
