# sftrace build. `make` builds build/sftrace and build/libsftrace.so;
# `make demo` records the bundled example; `make test` runs the suite
# (also under ASan+UBSan); `make bench` runs the benchmarks (never in CI).

CC       ?= cc
BUILD    ?= build
PREFIX   ?= /usr/local
WARN     := -Wall -Wextra -Werror
CSTD     := -std=gnu11
OPT      ?= -O2 -g
CPPFLAGS += -Icommon -Iinclude -Ilib -D_GNU_SOURCE

# The runtime: libc only (libdl, libpthread), no malloc on any path we own.
RT_SRCS  := $(wildcard runtime/*.c) $(wildcard runtime/arch/x86_64/*.c)
RT_ASM   := $(wildcard runtime/arch/x86_64/*.S)
RT_OBJS  := $(RT_SRCS:%.c=$(BUILD)/obj/%.o) $(RT_ASM:%.S=$(BUILD)/obj/%.o)
RT_CFLAGS := $(CSTD) $(OPT) $(WARN) -fPIC -fvisibility=hidden \
             -ftls-model=initial-exec -fno-stack-protector -mgeneral-regs-only

# The command-line tools.
TOOL_SRCS := $(wildcard cmd/*.c) $(wildcard lib/*.c)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/obj/%.o)
ASAN_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/asan/obj/%.o)
TOOL_LIBS := -lelf -ldw -lz -lpcre2-8 -liberty -lpthread -lm
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

HDRS := $(wildcard common/*.h include/*.h lib/*.h runtime/*.h runtime/arch/x86_64/*.h)

.PHONY: all deps demo test test-quick bench install clean format

all: $(BUILD)/sftrace $(BUILD)/libsftrace.so

deps:
	@sh scripts/deps.sh

$(BUILD)/libsftrace.so: $(RT_OBJS)
	$(CC) -shared -o $@ $^ -Wl,-z,now -Wl,--version-script=runtime/exports.map -ldl -lpthread

$(BUILD)/obj/runtime/%.o: runtime/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(RT_CFLAGS) -c -o $@ $<

$(BUILD)/obj/runtime/%.o: runtime/%.S $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -fPIC -c -o $@ $<

$(BUILD)/sftrace: $(TOOL_OBJS)
	$(CC) -o $@ $^ $(TOOL_LIBS)

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CSTD) $(OPT) $(WARN) -c -o $@ $<

# The same tools built with ASan and UBSan; the suite runs them too.
$(BUILD)/asan/sftrace: $(ASAN_OBJS)
	$(CC) $(SAN) -o $@ $^ $(TOOL_LIBS)

$(BUILD)/asan/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CSTD) -O1 -g $(WARN) $(SAN) -c -o $@ $<

demo: deps all
	@sh examples/demo.sh

# The viewer checks (tests/t_viewers.py) want chromium and two npm packages;
# scripts/viewer-deps.sh installs them into $(BUILD)/viewers, or says why not.
test: deps all $(BUILD)/asan/sftrace
	@BUILD=$(BUILD) sh scripts/viewer-deps.sh
	python3 tests/run.py

# make test-quick T=name: run the tests whose name contains `name`.
test-quick: all $(BUILD)/asan/sftrace
	python3 tests/run.py $(T)

bench: deps all
	@sh bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/sftrace $(DESTDIR)$(PREFIX)/bin/sftrace
	install -m 755 $(BUILD)/libsftrace.so $(DESTDIR)$(PREFIX)/lib/libsftrace.so
	install -m 644 include/sftrace.h $(DESTDIR)$(PREFIX)/include/sftrace.h
	sed 's|@PREFIX@|$(PREFIX)|g' scripts/sftrace.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/sftrace.pc

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
