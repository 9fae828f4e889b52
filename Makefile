# remigate -- plain Makefile.  `make` builds build/remigate; `make test` runs
# every suite (it installs missing Debian packages and starts its own servers).
# Objects go to build/ (or build/san/ with SAN=1).  V=1 shows full commands.

CC      ?= gcc
ifeq ($(origin CC),default)
CC       = gcc
endif
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

PKGS       = libevent libevent_pthreads hiredis libpq libconfig libsodium jansson \
             liboath
# pkg-config name -> the Debian package that brings it (scripts/deps
# installs them all).
DEB_libevent = libevent-dev
DEB_libevent_pthreads = libevent-dev
DEB_hiredis = libhiredis-dev
DEB_libpq = libpq-dev
DEB_libconfig = libconfig-dev
DEB_libsodium = libsodium-dev
DEB_jansson = libjansson-dev
DEB_liboath = liboath-dev
PKG_MISSING := $(shell for p in $(PKGS); do pkg-config --exists $$p || echo $$p; done)
ifneq ($(PKG_MISSING),)
ifeq ($(filter deps clean format format-check check-deps,$(MAKECMDGOALS)),)
$(error missing libraries: $(PKG_MISSING); install the Debian packages $(sort $(foreach p,$(PKG_MISSING),$(DEB_$(p)))) (scripts/deps does it))
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS  = $(STD) $(WARN) $(OPT) -g $(SANFLAGS) -I. $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
# libsodium is linked statically and its mmap()/munmap() calls wrapped
# (-u pulls the wrappers out of libremigate.a whatever the order): argon2id
# then hashes in memory each hashing thread keeps (console/con_pwmem.c).
# The fuzz targets link it as it is: hashing is not what they test.
SODIUM_LIBS = -Wl,-u,__wrap_mmap -Wl,-u,__wrap_munmap \
              -Wl,--wrap=mmap -Wl,--wrap=munmap \
              -Wl,-Bstatic -lsodium -Wl,-Bdynamic
LIBS        = $(filter-out -lsodium,$(PKG_LIBS)) $(SODIUM_LIBS) -lm
Q           = $(if $(filter 1,$(V)),,@)

MODULES  = flows sessions store console gateway notices
LIB_SRC  = $(filter-out gateway/gw_main.c,$(foreach m,$(MODULES),$(wildcard $(m)/*.c)))
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ = $(BUILD)/gateway/gw_main.o

UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTG_SRC = $(wildcard tests/integration/test_*.c)
INTG_BIN = $(INTG_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%)
TLIB_SRC = $(wildcard tests/lib/*.c)
TLIB_OBJ = $(TLIB_SRC:%.c=$(BUILD)/%.o)

.PHONY: all clean test test-faults test-bins bench-bins check-deps format format-check fuzz fuzz-bins deps web-vendor
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

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libremigate.a
	@echo "  LD    $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

bench-bins: $(BUILD)/bench/store_rate $(BUILD)/bench/gen_returnees \
	$(BUILD)/bench/seal_rate $(BUILD)/bench/pwhash_rate $(BUILD)/bench/kannel_box_rate

test-bins: $(BUILD)/remigate $(UNIT_BIN) $(INTG_BIN)
	@:

# libFuzzer targets (clang, always in build/fuzz/).  The first line of
# tests/fuzz/fuzz_X.c names the modules it links, e.g. "/* fuzz: flows */"
# or "/* fuzz: flows gateway */"; without that line it links flows/*.c.
FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CC  = clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -std=c11 -D_POSIX_C_SOURCE=200809L \
	-D_DEFAULT_SOURCE -Wall -Wextra -I. $(PKG_CFLAGS)

build/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(wildcard $(MODULES:%=%/*.h))
	@mkdir -p $(@D)
	@echo "  FUZZ  $@"
	$(Q)mods=$$(sed -n '1s|^/\* *fuzz: *\(.*[^ ]\) *\*/$$|\1|p' $<); \
	 srcs=; for m in $${mods:-flows}; do \
	   case " $(MODULES) " in *" $$m "*) ;; \
	   *) echo "$<: unknown module '$$m' in the fuzz: line" >&2; exit 1;; esac; \
	   for f in $$m/*.c; do [ -e "$$f" ] && [ "$$f" != gateway/gw_main.c ] && \
	     srcs="$$srcs $$f"; done; done; \
	 $(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $$srcs $(PKG_LIBS) -lm

fuzz-bins: $(FUZZ_BIN)
	@:

# `make fuzz [FUZZ_SECONDS=N]`: each target for N seconds (default 600),
# from a copy of tests/fuzz/corpus/<target>/; crashes are kept in
# build/fuzz/artifacts/.
fuzz:
	@$(MAKE) --no-print-directory -k fuzz-bins || true
	@FUZZ_SECONDS=$(or $(FUZZ_SECONDS),600) tests/run fuzz

deps:
	@scripts/deps

# web/vendor/qrcode.mjs: the console's QR code library, copied from the
# version pinned in tests/browser/package-lock.json (the browser tests check
# that the two are the same bytes).
web-vendor:
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	cp tests/browser/node_modules/qrcode-generator/dist/qrcode.mjs web/vendor/qrcode.mjs

# Installs what is missing, builds, runs every suite (tests/run); the
# closing line is "N passed, N failed[, N skipped]".  A test binary or fuzz
# target that does not build counts as a failure, the other suites still
# run.  `make test SAN=1` does the same under build/san/.
test:
	@scripts/deps
	@$(MAKE) --no-print-directory -k test-bins fuzz-bins || true
	@SAN=$(SAN) tests/run

ifndef CLANG_FORMAT
CLANG_FORMAT := $(shell command -v clang-format-14 || echo clang-format)
endif
FORMAT_SRC = $(wildcard $(MODULES:%=%/*.[ch]) config/*.[ch] \
	tests/unit/*.[ch] tests/integration/*.[ch] tests/lib/*.[ch] \
	tests/fuzz/*.[ch] bench/*.[ch])
# The fault suite alone (tests/faults/run.sh, about a minute): Redis and
# PostgreSQL paused, killed and restarted, the daemon killed, under load.
test-faults: $(BUILD)/remigate
	@SAN=$(SAN) tests/run faults

format:
	$(CLANG_FORMAT) -i $(FORMAT_SRC)

format-check:
	@out=$$(for f in $(FORMAT_SRC); do \
	   $(CLANG_FORMAT) $$f | cmp -s $$f - || echo "  $$f"; done); \
	 if [ -n "$$out" ]; then \
	   echo "format-check: these differ from $(CLANG_FORMAT) (make format):"; \
	   echo "$$out"; exit 1; fi; \
	 echo "format-check: ok ($(words $(FORMAT_SRC)) files)"

# flows/ is the pure core: no event loop, no Redis, no PostgreSQL, no HTTP,
# no other module of ours.  So is notices/'s core (notices.h, ntc_core.c:
# flows/ text helpers and gw_assert.h only); the rest of notices/ sees the
# gateway through gw.h and PostgreSQL through store/.
check-deps:
	@bad=$$(grep -nE '#include *[<"](event2/|event\.h|hiredis/|libpq-fe\.h|jansson\.h|sodium\.h|sessions/|store/|gateway/)' flows/*.[ch]); \
	 if [ -n "$$bad" ]; then echo "check-deps: flows/ must stay pure:"; echo "$$bad"; exit 1; fi; \
	 bad=$$(grep -nE '#include *[<"](gateway|console)/' sessions/*.[ch] store/*.[ch] 2>/dev/null); \
	 if [ -n "$$bad" ]; then echo "check-deps: sessions/ and store/ must not include gateway/ or console/:"; echo "$$bad"; exit 1; fi; \
	 bad=$$(grep -nE '#include *[<"](event2/|event\.h|hiredis/|libpq-fe\.h|jansson\.h|sodium\.h|sessions/|store/|gateway/gw(_int)?\.h)' notices/notices.h notices/ntc_core.c 2>/dev/null); \
	 if [ -n "$$bad" ]; then echo "check-deps: notices/'s core (notices.h, ntc_core.c) must stay pure:"; echo "$$bad"; exit 1; fi; \
	 bad=$$(grep -nE '#include *[<"](hiredis/|sessions/|gateway/gw_int\.h)' notices/*.[ch] 2>/dev/null); \
	 if [ -n "$$bad" ]; then echo "check-deps: notices/ reaches gateway/ through gw.h only, and never Redis:"; echo "$$bad"; exit 1; fi; \
	 bad=$$(grep -nE '#include *[<"](gateway/gw_int\.h|sessions/|hiredis/)' console/*.[ch] 2>/dev/null; \
	   grep -nE '#include *[<"]libpq-fe\.h' $$(ls console/*.[ch] | grep -v '/con_cli\.c$$') 2>/dev/null); \
	 if [ -n "$$bad" ]; then echo "check-deps: console/ reaches PostgreSQL through store/ (only the blocking command line, con_cli.c, uses libpq) and the server through gateway/gw.h:"; echo "$$bad"; exit 1; fi; \
	 echo "check-deps: ok"

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
.SECONDARY:
