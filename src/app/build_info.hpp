// What this binary was built from: the project version and the git commit (12 hex digits, or
// "unknown" outside a git checkout). Generated into one small translation unit
// (build_info.cpp.in) that is rewritten whenever HEAD moves, so `callgate --version` and
// /version never name a stale commit and a commit recompiles nothing else.
#pragma once

namespace callgate::app {

const char* BuildVersion();
const char* BuildCommit();

}  // namespace callgate::app
