#include "audio/sndfile_io.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace callgate::audio::detail {
namespace {

sf_count_t Seek(sf_count_t length, sf_count_t& position, sf_count_t offset, int whence) {
  sf_count_t base = 0;
  switch (whence) {
    case SEEK_SET:
      base = 0;
      break;
    case SEEK_CUR:
      base = position;
      break;
    case SEEK_END:
      base = length;
      break;
    default:
      return -1;
  }
  if (base + offset < 0) return -1;
  position = base + offset;
  return position;
}

sf_count_t ReadFrom(std::string_view data, sf_count_t& position, void* ptr, sf_count_t count) {
  const auto size = static_cast<sf_count_t>(data.size());
  if (count <= 0 || position >= size) return 0;
  const sf_count_t n = std::min(count, size - position);
  std::memcpy(ptr, data.data() + position, static_cast<std::size_t>(n));
  position += n;
  return n;
}

MemoryWriter& Writer(void* user_data) {
  return *static_cast<MemoryWriter*>(user_data);
}
MemoryReader& Reader(void* user_data) {
  return *static_cast<MemoryReader*>(user_data);
}

sf_count_t WriterLength(void* user_data) {
  return static_cast<sf_count_t>(Writer(user_data).data.size());
}
sf_count_t WriterSeek(sf_count_t offset, int whence, void* user_data) {
  MemoryWriter& w = Writer(user_data);
  return Seek(static_cast<sf_count_t>(w.data.size()), w.position, offset, whence);
}
sf_count_t WriterRead(void* ptr, sf_count_t count, void* user_data) {
  MemoryWriter& w = Writer(user_data);
  return ReadFrom(w.data, w.position, ptr, count);
}
sf_count_t WriterWrite(const void* ptr, sf_count_t count, void* user_data) {
  MemoryWriter& w = Writer(user_data);
  if (count <= 0) return 0;
  const auto end = static_cast<std::size_t>(w.position + count);
  try {
    if (w.data.size() < end) w.data.resize(end);  // a seek past the end leaves zeros
  } catch (const std::bad_alloc&) {
    return 0;  // libsndfile sees a short write; never throw through C
  }
  std::memcpy(w.data.data() + w.position, ptr, static_cast<std::size_t>(count));
  w.position += count;
  return count;
}
sf_count_t WriterTell(void* user_data) {
  return Writer(user_data).position;
}

sf_count_t ReaderLength(void* user_data) {
  return static_cast<sf_count_t>(Reader(user_data).data.size());
}
sf_count_t ReaderSeek(sf_count_t offset, int whence, void* user_data) {
  MemoryReader& r = Reader(user_data);
  return Seek(static_cast<sf_count_t>(r.data.size()), r.position, offset, whence);
}
sf_count_t ReaderRead(void* ptr, sf_count_t count, void* user_data) {
  MemoryReader& r = Reader(user_data);
  return ReadFrom(r.data, r.position, ptr, count);
}
sf_count_t ReaderWrite(const void*, sf_count_t, void*) {
  return 0;
}
sf_count_t ReaderTell(void* user_data) {
  return Reader(user_data).position;
}

std::int16_t FloatToPcm16(float value) {
  const long scaled = std::lround(static_cast<double>(value) * 32768.0);
  return static_cast<std::int16_t>(std::clamp(scaled, -32768L, 32767L));
}

}  // namespace

SF_VIRTUAL_IO MemoryWriterIo() {
  return {WriterLength, WriterSeek, WriterRead, WriterWrite, WriterTell};
}

SF_VIRTUAL_IO MemoryReaderIo() {
  return {ReaderLength, ReaderSeek, ReaderRead, ReaderWrite, ReaderTell};
}

std::string SndfileError(std::string_view what, SNDFILE* file) {
  return std::string(what) + ": " + sf_strerror(file);
}

std::vector<std::int16_t> ReadAllMono(SNDFILE* file, int channels, std::size_t max_samples,
                                      std::string_view what) {
  if (channels < 1) throw std::runtime_error(std::string(what) + ": no channels");
  constexpr sf_count_t kBlockFrames = 4096;
  // Read as float: libsndfile normalises every sample format to [-1, 1), and int16 survives
  // the trip exactly (s / 32768 is exact in a float). Reading float files as short instead
  // would not be scaled.
  std::vector<float> block(static_cast<std::size_t>(kBlockFrames * channels));
  std::vector<std::int16_t> out;
  while (true) {
    const sf_count_t frames = sf_readf_float(file, block.data(), kBlockFrames);
    if (frames <= 0) break;
    if (out.size() + static_cast<std::size_t>(frames) > max_samples) {
      throw std::runtime_error(std::string(what) + ": longer than the limit of " +
                               std::to_string(max_samples) + " samples");
    }
    for (sf_count_t f = 0; f < frames; ++f) {
      float sum = 0.0F;
      for (int c = 0; c < channels; ++c)
        sum += block[static_cast<std::size_t>(f * channels + c)];
      out.push_back(FloatToPcm16(sum / static_cast<float>(channels)));
    }
  }
  if (sf_error(file) != SF_ERR_NO_ERROR) throw std::runtime_error(SndfileError(what, file));
  return out;
}

}  // namespace callgate::audio::detail
