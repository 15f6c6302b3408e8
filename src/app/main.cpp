// mailroster: the user-provisioning core of an email security gateway. Wiring only; see
// app/cli.hpp for the command line and app/serve.hpp for the service.
#include <iostream>

#include "app/cli.hpp"

int main(int argc, char** argv) {
  return mailroster::app::run_cli(argc, argv, std::cout, std::cerr);
}
