// Runs a program as a child process with a given environment and stdin, and
// captures its exit code, stdout and stderr. Tests only. Every run has a
// deadline: a child still running after it is killed and the run fails.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace rhizome::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 if killed by a signal or the deadline
  std::string out;
  std::string err;
  bool timed_out = false;
};

struct ProcessOptions {
  std::map<std::string, std::string> env;  // the child's whole environment (plus PATH)
  std::string stdin_data;
  std::chrono::milliseconds deadline{60000};
};

// argv and envp for execve: the program and its arguments, and exactly `env`
// plus a default PATH. Built before fork(); the pointers live as long as the object.
struct ExecArgs {
  ExecArgs(const std::string& program, const std::vector<std::string>& args,
           const std::map<std::string, std::string>& env);
  ExecArgs(const ExecArgs&) = delete;
  ExecArgs& operator=(const ExecArgs&) = delete;
  std::vector<std::string> env_strings, argv_strings;
  std::vector<char*> envp, argv;
};

ProcessResult RunProcess(const std::string& program, const std::vector<std::string>& args,
                         const ProcessOptions& options = {});

}  // namespace rhizome::testing
