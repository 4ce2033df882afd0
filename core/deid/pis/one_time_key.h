#pragma once

#include <array>
#include <cstdint>
#include <filesystem>

#include "core/deid/pis/shift_plan.h"

namespace ppreid::deid::pis {

// The "one-time key" of a PIS release is its shift plan: with it, new labels map back to the real
// identities. It is only ever written encrypted, with AES-256-GCM under a 256-bit key file that
// the data owner keeps apart from the released data.

// A new key file: 32 bytes from OpenSSL's private CSPRNG as 64 hex characters and a newline,
// mode 0600 from its creation on. Written atomically; refuses to replace an existing file.
void create_key_file(const std::filesystem::path& path);

// Reads a key file. Refuses a missing file, a file that group or others may read or write
// ("chmod 600 FILE"), and anything but 64 hex characters (and an optional newline). Error messages
// never contain key material.
std::array<std::uint8_t, 32> read_key_file(const std::filesystem::path& path);

// File format: "PPREID-OTK1" | 12-byte random nonce | AES-256-GCM(plan_to_json(plan).dump()) |
// 16-byte tag, with the magic as additional authenticated data. Written atomically, mode 0600.
void write_one_time_key(const std::filesystem::path& file, const ShiftPlan& plan,
                        const std::filesystem::path& key_file);

// Decrypts and parses a one-time key. A wrong key file or a modified file throws Error
// "cannot decrypt FILE: wrong key file or the file was modified".
ShiftPlan read_one_time_key(const std::filesystem::path& file,
                            const std::filesystem::path& key_file);

}  // namespace ppreid::deid::pis
