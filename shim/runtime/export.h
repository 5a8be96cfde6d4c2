#pragma once
// The shim is built with -fvisibility=hidden; only hooks and the public API
// are exported, so nothing else of ours can interpose on the host's symbols.
#define CONNLEAK_EXPORT extern "C" __attribute__((visibility("default")))
