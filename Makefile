# mseg: one non-recursive Makefile. `make`, `make check`, `make check SANITIZE=1`,
# `make bench`, `make fuzz [FUZZ_S=N]`, `make install PREFIX=...`.

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
PKG_CONFIG ?= pkg-config

ifeq ($(SANITIZE),1)
BUILD ?= build-san
SAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT ?= -O1 -g
else
BUILD ?= build
SAN_FLAGS =
OPT ?= -O2 -g
endif

PKGS = libnftnl libmnl libnetfilter_queue yaml-0.1 libmicrohttpd jansson
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CURL_LIBS := $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null)
# jemalloc: msegd's allocator. Its start at cluster scale (lists of 150,000
# pods, millions of small JSON objects made and freed) took about half the
# CPU time with it (docs/benchmarks.md). Not in sanitized builds: ASan
# brings its own allocator.
ifeq ($(SANITIZE),1)
MALLOC_LIBS =
else
MALLOC_LIBS := $(shell $(PKG_CONFIG) --libs jemalloc 2>/dev/null)
endif

WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wformat=2 -Wvla -Wno-unused-parameter
CFLAGS ?= $(OPT)
ALL_CFLAGS = -std=gnu11 $(WARN) $(SAN_FLAGS) -D_GNU_SOURCE -Iinclude -Isrc/lib \
	     $(PKG_CFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS = $(SAN_FLAGS) $(LDFLAGS)
LIBS = $(PKG_LIBS) -lm

LIB_SRCS := $(sort $(wildcard src/lib/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/api_ui_files.o
# the flow map's HTML, CSS and JS, as C arrays generated into the build dir
UI_FILES := $(sort $(wildcard src/lib/api/ui/*.html src/lib/api/ui/*.css src/lib/api/ui/*.js))
LIB := $(BUILD)/libmseg.a

PROGS := $(BUILD)/msegd $(BUILD)/mseg $(BUILD)/mseg-cni
CLI_SRCS := $(sort $(wildcard src/mseg/*.c))
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/%)
BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

all: $(PROGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/gen/api_ui_files.c: $(UI_FILES) scripts/embed_ui.sh
	@mkdir -p $(@D)
	scripts/embed_ui.sh $(UI_FILES) >$@.tmp && mv $@.tmp $@

$(BUILD)/gen/api_ui_files.o: $(BUILD)/gen/api_ui_files.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

# libcurl: the Kubernetes watcher (src/lib/kube/)
$(BUILD)/msegd: $(BUILD)/src/msegd/main.o $(LIB)
ifneq ($(SANITIZE),1)
	@[ -n "$(MALLOC_LIBS)" ] || { echo "msegd: jemalloc not found (apt-get install libjemalloc-dev)" >&2; exit 1; }
endif
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS) $(MALLOC_LIBS)

$(BUILD)/mseg: $(CLI_OBJS) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS)

$(BUILD)/mseg-cni: $(BUILD)/src/cni/main.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS)

# libcurl for the client layer's tests (query strings)
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/tools/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS)

tests: $(PROGS) $(UNIT_BINS) $(TOOL_BINS)

# Runs every test and ends with "N passed, N failed, N skipped".
check: tests
	BUILD=$(BUILD) tests/run

# The incident of README.md ("Why") end to end, through the real CNI plugins
# (root; KEEP=1 leaves it running, `scripts/demo.sh clean` removes it).
demo: $(PROGS)
	BUILD=$(BUILD) scripts/demo.sh

# The reliability suite at full size (root; real namespaces and traffic; about
# 15 minutes): every test's output, then the FIGURE lines (docs/reliability.md).
reliability: $(PROGS)
	BUILD=$(BUILD) scripts/reliability.sh

bench: $(PROGS) $(BENCH_BINS) $(TOOL_BINS)
	BUILD=$(BUILD) bench/run

# libFuzzer targets (tests/fuzz/fuzz_*.c) with ASan+UBSan, built by clang
# into $(FUZZ_BUILD): the library again, with -fsanitize=fuzzer-no-link.
# `make fuzz` runs each target for FUZZ_S seconds on a copy of its corpus
# (tests/fuzz/corpus_NAME/; new inputs are not written back) after running
# its corpus and regression inputs once; a crash is a FAIL with the input's
# path.
FUZZ_CC ?= clang
FUZZ_BUILD ?= build-fuzz
FUZZ_S ?= 20
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# clang also warns about va_list formats that gcc accepts
FUZZ_CFLAGS = -std=gnu11 $(WARN) -Wno-format-nonliteral $(FUZZ_SAN) -fsanitize=fuzzer-no-link -g -O1 -D_GNU_SOURCE \
	      -Iinclude -Isrc/lib $(PKG_CFLAGS) -MMD -MP
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/gen/api_ui_files.o
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/src/%.o: src/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/gen/api_ui_files.o: $(BUILD)/gen/api_ui_files.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/libmseg.a: $(FUZZ_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libmseg.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LIBS) $(CURL_LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_S=$(FUZZ_S) tests/fuzz/run.sh

install: $(PROGS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/lib/cni
	install -m 0755 $(BUILD)/mseg $(DESTDIR)$(PREFIX)/bin/mseg
	install -m 0755 $(BUILD)/msegd $(DESTDIR)$(PREFIX)/sbin/msegd
	install -m 0755 $(BUILD)/mseg-cni $(DESTDIR)$(PREFIX)/lib/cni/mseg-cni

clean:
	rm -rf build build-san build-fuzz

.PHONY: all tests check bench install clean demo fuzz fuzz-build reliability
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
ifneq ($(filter fuzz%,$(MAKECMDGOALS)),)
-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
endif
