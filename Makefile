# fcgi-session. `make run` serves the demo, `make check` runs every test.
# Everything lands under $(BUILD); SANITIZE=1 builds an ASan+UBSan copy in
# build/asan so the two never mix. Each target installs what it needs and
# is missing (scripts/deps): `make` and `make install` the build
# dependencies only, `make run` the demo's server, `make check` what the
# tests start; DEPS=no installs nothing.

PREFIX  ?= /usr/local
DESTDIR ?=
PORT    ?= 8080
SERVER  ?= lighttpd
CC      ?= cc
DEPS    ?= yes

ifeq ($(SANITIZE),1)
BUILD   ?= build/asan
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT      = -O1
else
BUILD   ?= build
SANFLAGS =
OPT      = -O2 -D_FORTIFY_SOURCE=2
endif

WARN    = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
          -Wvla -Wimplicit-fallthrough -Wundef -Wpointer-arith
CFLAGS  ?= -g
CFLAGS  += -std=c11 $(OPT) $(WARN) -fstack-protector-strong -fPIC -D_GNU_SOURCE \
           $(LIB_INC) $(shell pkg-config --cflags hiredis 2>/dev/null) $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
DEPLIBS  = -lfcgi -llmdb -lsodium -ljansson -lhiredis
LDLIBS  += $(DEPLIBS)

# lib/ is in layers, a folder each (README, "The library"); every folder
# is on the include path, so a file names its neighbours' headers alone.
LIB_SRC   := $(sort $(shell find lib -name '*.c'))
LIB_HDR   := $(sort $(shell find lib -name '*.h'))
LIB_INC   := $(patsubst %/,-I%,$(sort $(dir $(LIB_HDR))))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
# The public headers, by audience: routes, administration, building blocks.
PUBLIC_HDR := lib/sess.h lib/sess_admin.h lib/sess_util.h
ROUTES    := $(sort $(basename $(notdir $(wildcard cgi-bin/*.c))))
ROUTE_BIN := $(ROUTES:%=$(BUILD)/cgi-bin/%.fcgi)
# tests/unit/ mirrors lib/; the programs land side by side in $(BUILD)/tests.
UNIT_SRC  := $(sort $(shell find tests/unit -name 'test_*.c'))
UNIT_BIN  := $(addprefix $(BUILD)/tests/,$(basename $(notdir $(UNIT_SRC))))
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz-replay/%)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

# scripts/deps runs once per machine for the build (again when it
# changes); with DEPS=no, never.
ifeq ($(DEPS),no)
DEPS_STAMP :=
DEPS_RUN   := @true
else
DEPS_STAMP := build/.deps-build
DEPS_RUN   := @SERVER=$(SERVER) FCGI=$(FCGI) TLS=$(TLS) scripts/deps
endif

# Object files are intermediate in the pattern chains; keep them so a second
# `make check` rebuilds nothing.
.SECONDARY:

.PHONY: all deps deps-run deps-check check unit integration run install uninstall fuzz lint bench \
        bench-report bench-lib format format-check clean valgrind

all: $(BUILD)/libfcgi-session.a $(BUILD)/libfcgi-session.so $(ROUTE_BIN) $(BUILD)/sessctl

# Every build target depends on the build's dependencies, so a fresh
# machine needs no step by hand; `make run` and `make check` add theirs,
# looked up each time (they depend on SERVER, and a test may have removed
# one). None of them stops a service that was running.
deps: $(DEPS_STAMP)
ifneq ($(DEPS_STAMP),)
$(DEPS_STAMP): scripts/deps
	@scripts/deps build
	@mkdir -p $(@D) && touch $@
endif

deps-run: | $(DEPS_STAMP)
	$(DEPS_RUN) run

deps-check: | $(DEPS_STAMP)
	$(DEPS_RUN) check

$(BUILD)/obj/%.o: %.c $(LIB_HDR) $(wildcard cgi-bin/demo/*.h tools/*.h) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# Only what the public headers declare leaves the library (their pragmas):
# the rest of lib/ is hidden from programs that link it.
$(LIB_OBJ): CFLAGS += -fvisibility=hidden

$(BUILD)/obj/tests/unit/%.o: CFLAGS += -Itests/unit
# The tests' own headers (fixture.h: struct client; a folder's own, such
# as store/lmdb/lmdb_fixture.h) are prerequisites too, or a changed fixture
# links against objects built for the old one.
$(UNIT_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/tests/unit/fixture.o: \
    $(shell find tests/unit -name '*.h') | deps-check

$(BUILD)/libfcgi-session.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libfcgi-session.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libfcgi-session.so.0 $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Every route of the demo links its shared part (cgi-bin/demo/).
DEMO_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard cgi-bin/demo/*.c))
$(BUILD)/cgi-bin/%.fcgi: $(BUILD)/obj/cgi-bin/%.o $(DEMO_OBJ) $(BUILD)/libfcgi-session.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sessctl: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tools/*.c)) $(BUILD)/libfcgi-session.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

define unit_rule
$(BUILD)/tests/$(basename $(notdir $(1))): $(BUILD)/obj/$(1:.c=.o) $(BUILD)/obj/tests/unit/fixture.o \
        $(BUILD)/libfcgi-session.a
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ -lcmocka $$(LDLIBS)
endef
$(foreach t,$(UNIT_SRC),$(eval $(call unit_rule,$(t))))

# Fuzz targets built as plain programs that replay their corpus (make check);
# `make fuzz` builds them with libFuzzer instead.
$(BUILD)/fuzz-replay/%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay_main.o \
                        $(BUILD)/libfcgi-session.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libfcgi-session.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# TEST_JOBS: the integration tests run that many at once (tests/run: 2 when
# empty; 1, one after the other).
check: deps-check all $(UNIT_BIN) $(FUZZ_BIN) $(BENCH_BIN)
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) TEST_JOBS=$(TEST_JOBS) tests/run

# The route executables and sessctl under valgrind behind lighttpd (CI);
# needs the normal build, not SANITIZE=1.
valgrind: deps-check all
	@BUILD=$(BUILD) scripts/valgrind-check

unit: $(UNIT_BIN)
	@BUILD=$(BUILD) tests/run unit

run: deps-run all
	@BUILD=$(BUILD) PORT=$(PORT) SERVER=$(SERVER) TLS=$(TLS) scripts/run

fuzz: | $(DEPS_STAMP)
	@BUILD=$(BUILD) scripts/fuzz $(FUZZ_SECONDS)

# The layering of lib/ (from the objects), cppcheck, clang-tidy (.clang-tidy)
# and scan-build; any finding fails.
lint: $(LIB_OBJ) | $(DEPS_STAMP)
	@BUILD=$(BUILD) LINT_CFLAGS='$(CFLAGS)' scripts/lint

# Every public function has a man page that matches its header (also a test
# of `make check`).
.PHONY: man-check
man-check: $(BUILD)/libfcgi-session.so
	@BUILD=$(BUILD) scripts/man-check $(BUILD)/libfcgi-session.so

# Measures, writes the raw figures (bench/raw/), then the report from them.
bench: deps-run all $(BENCH_BIN)
	@BUILD=$(BUILD) bench/run

# bench/results.md and results.png again from bench/raw/, measuring nothing.
bench-report:
	@bench/report

bench-lib: $(BUILD)/bench/bench_lib
	$(BUILD)/bench/bench_lib

# The directories install puts files in, under PREFIX.
INSTALL_DIRS := lib lib/pkgconfig include bin lib/fcgi-session lib/fcgi-session/cgi-bin \
                share/man/man3 share/man/man8 share/fcgi-session share/fcgi-session/html \
                share/fcgi-session/html/static
# The directories install made (those missing before, PREFIX and its
# parents included), one a line, for uninstall to remove.
MADE_DIRS    = $(DESTDIR)$(PREFIX)/lib/fcgi-session/made-dirs

# ldconfig after an install to the system, so that a program linked with
# -lfcgi-session finds it (not for a staged install, DESTDIR=..., nor as a
# user, who could not write its cache).
install: all
	@made=$$(for d in $(INSTALL_DIRS:%=$(PREFIX)/%); do \
	    while [ ! -d "$(DESTDIR)$$d" ] && [ "$$d" != / ] && [ "$$d" != . ]; do \
	        echo "$$d"; d=$$(dirname "$$d"); \
	    done; \
	done); \
	install -d $(INSTALL_DIRS:%=$(DESTDIR)$(PREFIX)/%) && \
	{ cat $(MADE_DIRS) 2> /dev/null; printf '%s\n' $$made; } | sed '/^$$/d' | LC_ALL=C sort -u > $(MADE_DIRS).new && \
	mv $(MADE_DIRS).new $(MADE_DIRS)
	install -m 644 $(BUILD)/libfcgi-session.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libfcgi-session.so $(DESTDIR)$(PREFIX)/lib/libfcgi-session.so.0
	ln -sf libfcgi-session.so.0 $(DESTDIR)$(PREFIX)/lib/libfcgi-session.so
	install -m 644 $(PUBLIC_HDR) $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|g' scripts/fcgi-session.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/fcgi-session.pc
	install -m 755 $(BUILD)/sessctl $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(ROUTE_BIN) $(DESTDIR)$(PREFIX)/lib/fcgi-session/cgi-bin/
	install -m 644 $(wildcard man/*.3) $(DESTDIR)$(PREFIX)/share/man/man3/
	install -m 644 $(wildcard man/*.8) $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 644 $(wildcard html/*.html) $(DESTDIR)$(PREFIX)/share/fcgi-session/html/
	install -m 644 $(wildcard html/static/*) $(DESTDIR)$(PREFIX)/share/fcgi-session/html/static/
	sed -e 's|^secret_file = .*|secret_file = /etc/fcgi-session/secret|' \
	    -e 's|^store = .*|store = lmdb:/var/lib/fcgi-session/sessions|' \
	    -e 's|^html_dir = .*|html_dir = $(PREFIX)/share/fcgi-session/html|' \
	    etc/fcgi-session.conf > $(DESTDIR)$(PREFIX)/share/fcgi-session/fcgi-session.conf
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v ldconfig > /dev/null; then \
	    echo ldconfig; ldconfig; \
	fi

# Removes what install put there, then the directories it made, if empty.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libfcgi-session.a $(DESTDIR)$(PREFIX)/lib/libfcgi-session.so \
	      $(DESTDIR)$(PREFIX)/lib/libfcgi-session.so.0 $(addprefix $(DESTDIR)$(PREFIX)/include/,$(notdir $(PUBLIC_HDR))) \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/fcgi-session.pc $(DESTDIR)$(PREFIX)/bin/sessctl \
	      $(addprefix $(DESTDIR)$(PREFIX)/lib/fcgi-session/cgi-bin/,$(notdir $(ROUTE_BIN))) \
	      $(addprefix $(DESTDIR)$(PREFIX)/share/man/man3/,$(notdir $(wildcard man/*.3))) \
	      $(addprefix $(DESTDIR)$(PREFIX)/share/man/man8/,$(notdir $(wildcard man/*.8))) \
	      $(addprefix $(DESTDIR)$(PREFIX)/share/fcgi-session/html/,$(notdir $(wildcard html/*.html))) \
	      $(addprefix $(DESTDIR)$(PREFIX)/share/fcgi-session/html/static/,$(notdir $(wildcard html/static/*))) \
	      $(DESTDIR)$(PREFIX)/share/fcgi-session/fcgi-session.conf
	@made=$$(cat $(MADE_DIRS) 2> /dev/null); rm -f $(MADE_DIRS); \
	for d in $$(printf '%s\n' $$made $(PREFIX)/lib/fcgi-session/cgi-bin $(PREFIX)/lib/fcgi-session \
	        $(PREFIX)/share/fcgi-session/html/static $(PREFIX)/share/fcgi-session/html \
	        $(PREFIX)/share/fcgi-session | LC_ALL=C sort -ru); do \
	    rmdir "$(DESTDIR)$$d" 2> /dev/null || true; \
	done
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v ldconfig > /dev/null; then \
	    echo ldconfig; ldconfig; \
	fi

# Debian packages from debian/ (README.md, "Debian packages") into
# $(BUILD)/deb-out. dpkg-buildpackage writes them next to the source tree,
# so it runs in a copy of the tree (the files git knows or would add, as
# they are now) under $(BUILD)/deb-tmp, with none of this make's variables
# in its environment: debian/rules sets its own.
.PHONY: deb
DEB_TMP = $(BUILD)/deb-tmp
DEB_OUT = $(BUILD)/deb-out
deb: | $(DEPS_STAMP)
	$(DEPS_RUN) dpkg-dev debhelper
	rm -rf $(DEB_TMP) && mkdir -p $(DEB_TMP)/fcgi-session $(DEB_OUT)
	@if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then \
	    git ls-files -z --cached --others --exclude-standard; \
	else \
	    find . -path ./build -prune -o -path ./.git -prune -o ! -type d -print0; \
	fi | tar --null --no-recursion --ignore-failed-read -T - -cf - | \
	    tar -xf - -C $(DEB_TMP)/fcgi-session
	cd $(DEB_TMP)/fcgi-session && \
	    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BUILD -u SANITIZE -u PREFIX -u DESTDIR \
	        -u DEPS -u CFLAGS -u LDFLAGS -u LDLIBS -u CC \
	    dpkg-buildpackage -b -us -uc -Jauto
	rm -f $(DEB_OUT)/*
	mv $(DEB_TMP)/*.deb $(DEB_TMP)/*.buildinfo $(DEB_TMP)/*.changes $(DEB_OUT)/
	rm -rf $(DEB_TMP)
	@ls $(DEB_OUT)/*.deb

format:
	clang-format -i $(LIB_SRC) $(LIB_HDR) cgi-bin/*.c cgi-bin/demo/*.[ch] tools/*.[ch] $(shell find tests/unit -name '*.[ch]') \
	    tests/fuzz/*.c bench/*.c

format-check:
	clang-format --dry-run -Werror $(LIB_SRC) $(LIB_HDR) cgi-bin/*.c cgi-bin/demo/*.[ch] tools/*.[ch] \
	    $(shell find tests/unit -name '*.[ch]') tests/fuzz/*.c bench/*.c

clean:
	rm -rf build
