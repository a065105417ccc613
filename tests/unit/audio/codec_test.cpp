#include "audio/codec.hpp"
#include "audio/format.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <stdexcept>

namespace callgate::audio {
namespace {

// ---- AudioFormat ----

TEST(AudioFormat, NamesAndSizes) {
  std::vector<std::string> names;
  for (const AudioFormat& f : AllFormats())
    names.push_back(f.Name());
  EXPECT_EQ(names, (std::vector<std::string>{"pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000",
                                             "pcm_44100", "pcm_48000", "ulaw_8000"}));
  const AudioFormat pcm{AudioFormat::Encoding::kPcm16, 16000};
  const AudioFormat ulaw{AudioFormat::Encoding::kMulaw, 8000};
  EXPECT_EQ(pcm.BytesPerSample(), 2u);
  EXPECT_EQ(pcm.BytesPerSecond(), 32000u);
  EXPECT_EQ(ulaw.BytesPerSample(), 1u);
  EXPECT_EQ(ulaw.BytesPerSecond(), 8000u);
}

TEST(AudioFormat, ParseAcceptsExactlyTheApiNames) {
  for (const AudioFormat& f : AllFormats()) {
    const auto parsed = ParseFormat(f.Name());
    ASSERT_TRUE(parsed.has_value()) << f.Name();
    EXPECT_EQ(*parsed, f);
  }
  EXPECT_EQ(ParseFormat("pcm_44100")->sample_rate, 44100);
  EXPECT_EQ(ParseFormat("ulaw_8000")->encoding, AudioFormat::Encoding::kMulaw);
}

TEST(AudioFormat, ParseRejectsOtherNames) {
  // Case-sensitive, like the API's enum: "PCM_16000" is not a format.
  for (const char* bad :
       {"pcm_11025", "mp3_44100", "PCM_16000", "Pcm_16000", "ulaw_16000", "pcm_16000 ",
        " pcm_16000", "pcm16000", "pcm_", "", "ulaw_8000\n", "pcm_016000", "alaw_8000"}) {
    EXPECT_FALSE(ParseFormat(bad).has_value()) << '"' << bad << '"';
  }
}

// ---- PCM16LE ----

TEST(Pcm16Le, ByteOrderIsLittleEndian) {
  const std::vector<std::uint8_t> bytes = {0x34, 0x12, 0xFF, 0xFF, 0x00, 0x80, 0xFF, 0x7F};
  EXPECT_EQ(DecodePcm16Le(bytes), (std::vector<std::int16_t>{0x1234, -1, -32768, 32767}));
  EXPECT_EQ(EncodePcm16Le(std::vector<std::int16_t>{0x1234, -1, -32768, 32767}), bytes);
}

TEST(Pcm16Le, OddTrailingByteIsIgnored) {
  const std::vector<std::uint8_t> bytes = {0x01, 0x00, 0x02};
  EXPECT_EQ(DecodePcm16Le(bytes), (std::vector<std::int16_t>{1}));
  EXPECT_TRUE(DecodePcm16Le(std::vector<std::uint8_t>{0x7F}).empty());
  EXPECT_TRUE(DecodePcm16Le({}).empty());
}

TEST(Pcm16Le, EveryValueRoundTrips) {
  std::vector<std::int16_t> all;
  for (int v = -32768; v <= 32767; ++v)
    all.push_back(static_cast<std::int16_t>(v));
  const std::vector<std::uint8_t> bytes = EncodePcm16Le(all);
  ASSERT_EQ(bytes.size(), all.size() * 2);
  EXPECT_EQ(DecodePcm16Le(bytes), all);
}

// ---- mu-law ----

// The G.711 mu-law definition, written out independently: a biased magnitude
// b = min(|x|, 32635) + 132 falls in segment s when 128 << s <= b < 256 << s, and within it in
// step q of 16, each 8 << s wide. The code is the bitwise complement of sign|s|q.
// A step decodes to its middle: (132 + 8q) << s, minus the bias.
struct MulawReference {
  static std::uint8_t Encode(int x) {
    const int sign = x < 0 ? 0x80 : 0x00;
    const int b = std::min(std::abs(x), 32635) + 132;
    for (int s = 0; s < 8; ++s) {
      for (int q = 0; q < 16; ++q) {
        const int lo = (128 + 8 * q) << s;
        const int hi = (128 + 8 * (q + 1)) << s;
        if (b >= lo && b < hi) return static_cast<std::uint8_t>(0xFF ^ (sign | (s << 4) | q));
      }
    }
    ADD_FAILURE() << "no segment for " << x;
    return 0;
  }
  static int Decode(std::uint8_t code) {
    const int bits = 0xFF ^ code;
    const int s = (bits >> 4) & 7;
    const int q = bits & 15;
    const int magnitude = ((132 + 8 * q) << s) - 132;
    return (bits & 0x80) != 0 ? -magnitude : magnitude;
  }
};

TEST(Mulaw, PublishedReferenceValues) {
  // The ends of the familiar 256-entry mu-law table (g711.c, Sun Microsystems; ITU-T G.711):
  // -32124, -31100, ..., -8, 0 for codes 0x00..0x7F and 32124, ..., 8, 0 for 0x80..0xFF.
  // 1000 <-> 0xCE <-> 988 and 0xF0 <-> 120 were worked by hand from the segment table.
  EXPECT_EQ(MulawEncode(0), 0xFF);
  EXPECT_EQ(MulawEncode(-1), 0x7F);
  EXPECT_EQ(MulawEncode(1), 0xFF);
  EXPECT_EQ(MulawEncode(32767), 0x80);
  EXPECT_EQ(MulawEncode(-32768), 0x00);
  EXPECT_EQ(MulawEncode(32635), 0x80);
  EXPECT_EQ(MulawEncode(1000), 0xCE);
  EXPECT_EQ(MulawEncode(-1000), 0x4E);
  EXPECT_EQ(MulawDecode(0xFF), 0);
  EXPECT_EQ(MulawDecode(0x7F), 0);
  EXPECT_EQ(MulawDecode(0x80), 32124);
  EXPECT_EQ(MulawDecode(0x00), -32124);
  EXPECT_EQ(MulawDecode(0x01), -31100);
  EXPECT_EQ(MulawDecode(0x7E), -8);
  EXPECT_EQ(MulawDecode(0xFE), 8);
  EXPECT_EQ(MulawDecode(0xCE), 988);
  EXPECT_EQ(MulawDecode(0xF0), 120);
}

TEST(Mulaw, EncodeMatchesTheSegmentDefinitionForEveryInput) {
  for (int x = -32768; x <= 32767; ++x) {
    ASSERT_EQ(MulawEncode(static_cast<std::int16_t>(x)), MulawReference::Encode(x)) << x;
  }
}

TEST(Mulaw, DecodeMatchesTheSegmentDefinitionForEveryCode) {
  for (int c = 0; c < 256; ++c) {
    EXPECT_EQ(MulawDecode(static_cast<std::uint8_t>(c)),
              MulawReference::Decode(static_cast<std::uint8_t>(c)))
        << c;
  }
}

TEST(Mulaw, DecodeOfEncodeIsWithinHalfAStep) {
  for (int x = -32768; x <= 32767; x += 7) {
    const std::uint8_t code = MulawEncode(static_cast<std::int16_t>(x));
    const int segment = ((0xFF ^ code) >> 4) & 7;
    const int half_step = 4 << segment;
    const int y = MulawDecode(code);
    if (std::abs(x) <= 32635) {
      EXPECT_LE(std::abs(x - y), half_step) << x;
    } else {
      EXPECT_EQ(std::abs(y), 32124) << x;  // clipped to the top step
    }
  }
}

TEST(Mulaw, EveryCodeRoundTripsExceptNegativeZero) {
  // G.711 has two zeros, 0xFF (+0) and 0x7F (-0). Both decode to 0, and 0 encodes as 0xFF, so
  // 0x7F is the single code that does not come back as itself.
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    const std::uint8_t again = MulawEncode(MulawDecode(code));
    if (code == 0x7F) {
      EXPECT_EQ(again, 0xFF);
    } else {
      EXPECT_EQ(again, code) << c;
    }
  }
}

TEST(Mulaw, IsMonotonic) {
  int previous = MulawDecode(MulawEncode(-32768));
  for (int x = -32767; x <= 32767; ++x) {
    const int y = MulawDecode(MulawEncode(static_cast<std::int16_t>(x)));
    ASSERT_GE(y, previous) << x;
    previous = y;
  }
}

TEST(Mulaw, VectorVersionsMatchScalar) {
  const std::vector<std::int16_t> samples = {0, -1, 1000, -32768, 32767, 12345};
  const std::vector<std::uint8_t> codes = EncodeMulaw(samples);
  ASSERT_EQ(codes.size(), samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    EXPECT_EQ(codes[i], MulawEncode(samples[i]));
  }
  const std::vector<std::int16_t> decoded = DecodeMulaw(codes);
  ASSERT_EQ(decoded.size(), codes.size());
  for (std::size_t i = 0; i < codes.size(); ++i)
    EXPECT_EQ(decoded[i], MulawDecode(codes[i]));
}

// ---- Encode/Decode per format ----

std::vector<std::int16_t> RandomSamples(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-32768, 32767);
  std::vector<std::int16_t> out(n);
  for (auto& s : out)
    s = static_cast<std::int16_t>(dist(rng));
  out[0] = -32768;
  out[1] = 32767;
  out[2] = 0;
  return out;
}

TEST(Codec, EveryFormatRoundTrips) {
  const std::vector<std::int16_t> samples = RandomSamples(4000, 7);
  for (const AudioFormat& format : AllFormats()) {
    SCOPED_TRACE(format.Name());
    const std::vector<std::uint8_t> bytes = Encode(format, samples);
    ASSERT_EQ(bytes.size(), samples.size() * format.BytesPerSample());
    const std::vector<std::int16_t> back = Decode(format, bytes);
    ASSERT_EQ(back.size(), samples.size());
    if (format.encoding == AudioFormat::Encoding::kPcm16) {
      EXPECT_EQ(back, samples);
    } else {
      for (std::size_t i = 0; i < samples.size(); ++i) {
        const int x = samples[i];
        const int allowed = std::abs(x) > 32635 ? 644 : std::max(4, std::abs(x) / 16 + 4);
        ASSERT_LE(std::abs(back[i] - x), allowed) << "sample " << i << " = " << x;
      }
    }
  }
}

TEST(Codec, UlawBytesAreMulawCodes) {
  const AudioFormat ulaw = *ParseFormat("ulaw_8000");
  EXPECT_EQ(Encode(ulaw, std::vector<std::int16_t>{0, -32768}),
            (std::vector<std::uint8_t>{0xFF, 0x00}));
  EXPECT_EQ(Decode(ulaw, std::vector<std::uint8_t>{0x80, 0x00}),
            (std::vector<std::int16_t>{32124, -32124}));
}

// ---- MixInto ----

TEST(Mix, AddsGrowsAndSaturates) {
  std::vector<std::int16_t> dest = {100, 200};
  MixInto(dest, std::vector<std::int16_t>{1, 2, 3}, 1);
  EXPECT_EQ(dest, (std::vector<std::int16_t>{100, 201, 2, 3}));
  MixInto(dest, std::vector<std::int16_t>{7}, 6);
  EXPECT_EQ(dest, (std::vector<std::int16_t>{100, 201, 2, 3, 0, 0, 7}));
  std::vector<std::int16_t> loud = {30000, -30000};
  MixInto(loud, std::vector<std::int16_t>{10000, -10000}, 0);
  EXPECT_EQ(loud, (std::vector<std::int16_t>{32767, -32768}));
}

TEST(Codec, InPlaceFormsMatchTheVectorForms) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> dist(-32768, 32767);
  std::vector<std::int16_t> samples(999);
  for (auto& s : samples)
    s = static_cast<std::int16_t>(dist(rng));
  for (const AudioFormat& format : AllFormats()) {
    std::vector<std::uint8_t> bytes(samples.size() * format.BytesPerSample());
    EncodeTo(format, samples, bytes);
    EXPECT_EQ(bytes, Encode(format, samples)) << format.Name();
    std::vector<std::int16_t> decoded(samples.size());
    DecodeTo(format, bytes, decoded);
    EXPECT_EQ(decoded, Decode(format, bytes)) << format.Name();
  }
}

TEST(Codec, InPlaceFormsRejectAWrongOutputSize) {
  const AudioFormat pcm = *ParseFormat("pcm_16000");
  const std::vector<std::int16_t> samples(10);
  std::vector<std::uint8_t> bytes(19);
  EXPECT_THROW(EncodeTo(pcm, samples, bytes), std::invalid_argument);
  std::vector<std::int16_t> out(10);
  EXPECT_THROW(DecodeTo(pcm, bytes, out), std::invalid_argument);  // 19 bytes are 9 samples
  std::vector<std::int16_t> nine(9);
  EXPECT_NO_THROW(DecodeTo(pcm, bytes, nine));
}

}  // namespace
}  // namespace callgate::audio
