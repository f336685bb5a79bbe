# mseg: one non-recursive Makefile. `make`, `make check`, `make check SANITIZE=1`,
# `make bench`, `make install PREFIX=...`.

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

WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wformat=2 -Wvla -Wno-unused-parameter
CFLAGS ?= $(OPT)
ALL_CFLAGS = -std=gnu11 $(WARN) $(SAN_FLAGS) -D_GNU_SOURCE -Iinclude -Isrc/lib \
	     $(PKG_CFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS = $(SAN_FLAGS) $(LDFLAGS)
LIBS = $(PKG_LIBS) -lm

LIB_SRCS := $(sort $(wildcard src/lib/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
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

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/msegd: $(BUILD)/src/msegd/main.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/mseg: $(CLI_OBJS) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS)

$(BUILD)/mseg-cni: $(BUILD)/src/cni/main.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS)

# libcurl for the client layer's tests (query strings)
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/tools/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

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

install: $(PROGS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/lib/cni
	install -m 0755 $(BUILD)/mseg $(DESTDIR)$(PREFIX)/bin/mseg
	install -m 0755 $(BUILD)/msegd $(DESTDIR)$(PREFIX)/sbin/msegd
	install -m 0755 $(BUILD)/mseg-cni $(DESTDIR)$(PREFIX)/lib/cni/mseg-cni

clean:
	rm -rf build build-san

.PHONY: all tests check bench install clean demo reliability
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
