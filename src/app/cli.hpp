// The `mailroster` command line: `serve`, `check-config`, and the administrator's verbs
// (company, domain, user, alias, audit). Each verb has --help; listings take --json.
// Exit status: 0 success, 1 the request failed (one line on stderr says why, nothing was
// changed), 2 the command line itself is wrong.
#pragma once

#include <iosfwd>

namespace mailroster::app {

int run_cli(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace mailroster::app
