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

.PHONY: all clean test test-bins check-deps format format-check
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
