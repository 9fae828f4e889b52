# remigate -- plain Makefile.  `make` builds build/remigate; `make test` runs
# every suite (it installs missing Debian packages and starts its own servers).
# Objects go to build/ (or build/san/ with SAN=1).  V=1 shows full commands.

CC      ?= gcc
SAN     ?= 0
WERROR  ?= 1
OPT     ?= -O2
BUILD   := build
ifeq ($(SAN),1)
OPT      = -O1
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
BUILD   := build/san
endif

STD   = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN  = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wwrite-strings -Wpointer-arith -Wformat=2 -Wvla -Wundef
ifeq ($(WERROR),1)
WARN += -Werror
endif

PKGS       = libevent libevent_pthreads hiredis libpq libconfig libsodium jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS  = $(STD) $(WARN) $(OPT) -g $(SANFLAGS) -I. $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS        = $(PKG_LIBS) -lm
Q           = $(if $(filter 1,$(V)),,@)

MODULES  = flows sessions store gateway
LIB_SRC  = $(filter-out gateway/gw_main.c,$(foreach m,$(MODULES),$(wildcard $(m)/*.c)))
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ = $(BUILD)/gateway/gw_main.o

UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTG_SRC = $(wildcard tests/integration/test_*.c)
INTG_BIN = $(INTG_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%)
TLIB_SRC = $(wildcard tests/lib/*.c)
TLIB_OBJ = $(TLIB_SRC:%.c=$(BUILD)/%.o)

.PHONY: all clean test test-bins check-deps format format-check fuzz fuzz-bins deps
all: $(BUILD)/remigate

$(BUILD)/remigate: $(MAIN_OBJ) $(BUILD)/libremigate.a
	@echo "  LD    $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libremigate.a: $(LIB_OBJ)
	@echo "  AR    $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC    $<"
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(TLIB_OBJ) $(BUILD)/libremigate.a
	@echo "  LD    $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/tests/integration/%: $(BUILD)/tests/integration/%.o $(TLIB_OBJ) $(BUILD)/libremigate.a
	@echo "  LD    $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

test-bins: $(BUILD)/remigate $(UNIT_BIN) $(INTG_BIN)

# libFuzzer targets (clang).  The first line of each names what it links:
# "/* fuzz: flows */" links flows/*.c.
FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CC  = clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 \
	-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I.

build/fuzz/%: tests/fuzz/%.c $(wildcard flows/*.c flows/*.h)
	@mkdir -p $(@D)
	@echo "  FUZZ  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< \
	  $$(sed -n '1s|^/\* fuzz: \(.*\) \*/$$|\1|p' $< | \
	     tr ' ' '\n' | sed 's|^flows$$|flows/*.c|') -lconfig

fuzz-bins: $(FUZZ_BIN)

# `make fuzz FUZZ_SECONDS=600`: each target for that long, by hand.
fuzz: fuzz-bins
	@for b in $(FUZZ_BIN); do n=$$(basename $$b); d=$$(mktemp -d); \
	  cp -r tests/fuzz/corpus/$$n/. $$d/ 2>/dev/null; \
	  echo "fuzz: $$n for $${FUZZ_SECONDS:-600}s"; \
	  $$b -max_total_time=$${FUZZ_SECONDS:-600} -max_len=512 $$d || exit 1; \
	  rm -rf $$d; done

deps:
	@scripts/deps

# Installs what is missing, builds, runs every suite; the closing line is
# "N passed, N failed".
test:
	@scripts/deps
	@$(MAKE) --no-print-directory test-bins fuzz-bins
	@SAN=$(SAN) tests/run

FORMAT_SRC = $(wildcard flows/*.[ch] sessions/*.[ch] store/*.[ch] gateway/*.[ch] tests/unit/*.c tests/fuzz/*.c)
format:
	clang-format -i $(FORMAT_SRC)

format-check:
	@out=$$(for f in $(FORMAT_SRC); do clang-format $$f | diff -q $$f - >/dev/null || echo $$f; done); \
	 if [ -n "$$out" ]; then echo "format-check: run 'make format' on:"; echo "$$out"; exit 1; fi; \
	 echo "format-check: ok"

# flows/ is the pure core: no event loop, no Redis, no PostgreSQL, no HTTP,
# no other module of ours.
check-deps:
	@bad=$$(grep -nE '#include *[<"](event2/|event\.h|hiredis/|libpq-fe\.h|jansson\.h|sodium\.h|sessions/|store/|gateway/)' flows/*.[ch]); \
	 if [ -n "$$bad" ]; then echo "check-deps: flows/ must stay pure:"; echo "$$bad"; exit 1; fi; \
	 bad=$$(grep -nE '#include *[<"]gateway/' sessions/*.[ch] store/*.[ch] 2>/dev/null); \
	 if [ -n "$$bad" ]; then echo "check-deps: sessions/ and store/ must not include gateway/:"; echo "$$bad"; exit 1; fi; \
	 echo "check-deps: ok"

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
.SECONDARY:
