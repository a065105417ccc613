# callgate: the two set-up commands are `make run` and `make test` (see README.md).
# Both install what is missing with apt-get first (scripts/install-deps.sh).

BUILD_DIR   ?= build
ASAN_DIR    ?= build-asan
BUILD_TYPE  ?= Release
# The release build uses g++ 12, the sanitizer build clang 14, so that `make test` keeps both of
# Debian's compilers building the whole tree with -Werror.
RELEASE_CXX ?= g++
ASAN_CXX    ?= clang++
CMAKE       ?= cmake
# Extra arguments for `make run`, e.g. make run ARGS="--port 9000"
ARGS        ?=

export ASAN_OPTIONS  ?= detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

.PHONY: all build deps run test test-release test-asan fuzz format format-check tidy clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	$(CMAKE) -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_CXX_COMPILER=$(RELEASE_CXX)

# The release binary at build/callgate.
build: deps $(BUILD_DIR)/build.ninja
	$(CMAKE) --build $(BUILD_DIR) --target callgate

# Builds and runs the service. With no ELEVENLABS_API_KEY (environment or .env) it runs the demo:
# the gateway wired to the built-in ElevenLabs simulator. With no API_KEYS it listens on
# 127.0.0.1 only.
run: build
	./$(BUILD_DIR)/callgate serve --loopback-if-no-keys --demo-if-no-elevenlabs-key $(ARGS)

# Every test: unit + integration on the release build (g++), then again under ASan + UBSan (clang).
test: deps
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory test-release && \
	$(MAKE) --no-print-directory test-asan && \
	echo "make test: all suites passed in $$(( $$(date +%s) - start )) s"

test-release: $(BUILD_DIR)/build.ninja
	$(CMAKE) --build $(BUILD_DIR)
	cd $(BUILD_DIR) && ctest --output-on-failure -j2 --timeout 300

test-asan:
	$(CMAKE) -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCALLGATE_SANITIZE=ON \
	  -DCMAKE_CXX_COMPILER=$(ASAN_CXX)
	$(CMAKE) --build $(ASAN_DIR)
	cd $(ASAN_DIR) && ctest --output-on-failure -j2 --timeout 600

# Coverage-guided fuzzing of the parsers with clang's libFuzzer, FUZZ_SECONDS each (the
# committed corpora in fuzz/corpus are replayed by `make test` without this).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := dotenv_fuzz json_body_fuzz webhook_fuzz conversation_protocol_fuzz \
  conversation_parse_fuzz
fuzz: deps
	CXX=clang++ $(CMAKE) -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCALLGATE_FUZZ=ON -DCALLGATE_BUILD_TESTS=OFF
	$(CMAKE) --build build-fuzz --target $(FUZZ_TARGETS)
	for target in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$target && \
	  ./build-fuzz/fuzz/$$target -max_total_time=$(FUZZ_SECONDS) \
	    build-fuzz/corpus/$$target fuzz/corpus/$$target || exit 1; \
	done

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

format-check:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror

tidy: $(BUILD_DIR)/build.ninja
	git ls-files 'src/*.cpp' 'cli/*.cpp' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) build-fuzz
