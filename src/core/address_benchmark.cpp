// How fast addresses are parsed and keyed: every RCPT TO and every imported row goes through
// Address::parse, so it must cost well under a microsecond.
#include <benchmark/benchmark.h>

#include "core/address.hpp"

namespace {

void BM_ParseSimpleAddress(benchmark::State& state) {
  for (auto _ : state) {
    auto a = mailroster::core::Address::parse("Alice.Liddell@Acme.Example");
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_ParseSimpleAddress);

void BM_ParseQuotedAddress(benchmark::State& state) {
  for (auto _ : state) {
    auto a = mailroster::core::Address::parse("\"alice liddell\"@acme.example");
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_ParseQuotedAddress);

}  // namespace
