# resnet.c - build, run and test.
#
#   make          build the library (static + shared), the `resnet` CLI and the tests
#   make run      install what is missing, build, run the main job on bundled data
#   make test     install what is missing, build, run every test (non-zero on failure)
#   make ci       make test, then the sanitizer and fuzzing suites below (CI, .ci/run, runs make test)
#   make deps     install missing Debian packages (PyTorch for the parity tests)
#   make install  install the CLI, library, header, pkg-config file, man page and bash
#                 completion (PREFIX=/usr/local, DESTDIR= for staged installs); make uninstall
#   make sanitize build with clang's AddressSanitizer + UndefinedBehaviorSanitizer (build/sanitize)
#                 and run the C test suites and the CLI's malformed-file suites under it
#   make fuzz     build the libFuzzer targets (build/fuzz) and run each briefly (FUZZ_SECONDS each)
#   make clean

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -fPIC -fno-strict-aliasing -fno-math-errno -D_GNU_SOURCE -Iinclude -Isrc
# The vector-extension files (winograd_weights.h, conv_wgrad_winograd.c) pass 8-lane vectors
# between static functions, where no ABI is crossed; GCC notes an ABI change for such
# parameters in every file compiled without AVX-512 (a note, beyond a pragma's reach), and
# clang warns. One flag for both, in place of pragmas in the files.
CFLAGS  += -Wno-psabi
LDLIBS  += -lpng -ljpeg -lz -lm -lpthread
# sanitizer flags for the whole build (set by `make sanitize` / `make fuzz`)
SAN     ?=
CFLAGS  += $(SAN)
LDFLAGS += $(SAN)

# OpenMP when the compiler has it.
HAVE_OPENMP := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo 1)
ifeq ($(HAVE_OPENMP),1)
  CFLAGS  += -fopenmp
  LDFLAGS += -fopenmp
endif

# x86 SIMD kernels: each file is compiled for its own instruction set (named
# by its suffix) and called only when the CPU has it (src/core/cpu.c).
ARCH := $(shell uname -m)
X86_SRC := $(if $(filter x86_64,$(ARCH)),$(wildcard src/ops/x86/*.c),)
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -mavx2
AVX2_FLAGS := -mavx2 -mfma
AVX512VNNI_FLAGS := $(AVX512_FLAGS) -mavx512vnni
AVX512BF16_FLAGS := $(AVX512_FLAGS) -mavx512bf16
AVX512VBMI_FLAGS := $(AVX512_FLAGS) -mavx512vbmi
AMX_FLAGS := $(AVX512VNNI_FLAGS) -mavx512bf16 -mamx-tile -mamx-int8 -mamx-bf16
ifneq ($(X86_SRC),)
  CFLAGS += -DRN_HAVE_X86_KERNELS
endif

# MPI: when mpicc works (or MPI=1; MPI=0 turns it off) the `resnet` binary is
# built MPI-enabled: cli/dist_mpi.c is compiled and the binary linked by
# mpicc, so `mpirun -np N build/resnet train ...` trains data-parallel (one
# binary: the same name and commands on a laptop and on a cluster; started
# without a launcher it never initialises MPI and runs as one process).
# Without MPI, cli/dist_single.c (a group of one) takes its place and the
# build is as before. The library is never built with MPI.
MPICC ?= mpicc
ifndef MPI
  MPI := $(shell printf '\043include <mpi.h>\nint main(void){return MPI_Init(0,0);}\n' | \
           $(MPICC) -x c - -o /dev/null >/dev/null 2>&1 && echo 1 || echo 0)
endif
ifeq ($(MPI),1)
  DIST_SRC := cli/dist_mpi.c
  CLI_LD   := $(MPICC)
else
  DIST_SRC := cli/dist_single.c
  CLI_LD   := $(CC)
endif

LIB_SRC := $(wildcard src/core/*.c src/ops/*.c src/model/*.c src/engine/*.c src/io/*.c src/data/*.c src/train/*.c src/report/*.c) $(X86_SRC)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC := $(filter-out cli/dist_%.c,$(wildcard cli/*.c)) $(DIST_SRC)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
ifeq ($(MPI),1)
  TEST_BIN += $(BUILD)/tests/mpi_reduce
endif
HDRS := $(wildcard include/*.h src/*/*.h src/*/*/*.h cli/*.h tests/*.h)

.PHONY: all lib cli tests run test ci deps clean bench-ort dev docs install uninstall sanitize fuzz fuzzers

all: lib cli tests $(BUILD)/example

lib: $(BUILD)/libresnet.a $(BUILD)/public/libresnet.a $(BUILD)/libresnet.so
cli: $(BUILD)/resnet
tests: $(TEST_BIN)

$(BUILD)/obj/src/ops/x86/%_avx512.o: src/ops/x86/%_avx512.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512_FLAGS) -c $< -o $@

$(BUILD)/obj/src/ops/x86/%_avx512vnni.o: src/ops/x86/%_avx512vnni.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512VNNI_FLAGS) -c $< -o $@

$(BUILD)/obj/src/ops/x86/%_avx512bf16.o: src/ops/x86/%_avx512bf16.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512BF16_FLAGS) -c $< -o $@

$(BUILD)/obj/src/ops/x86/%_avx512vbmi.o: src/ops/x86/%_avx512vbmi.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512VBMI_FLAGS) -c $< -o $@

$(BUILD)/obj/src/ops/x86/%_amx.o: src/ops/x86/%_amx.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AMX_FLAGS) -c $< -o $@

$(BUILD)/obj/src/ops/x86/%_avx2.o: src/ops/x86/%_avx2.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX2_FLAGS) -c $< -o $@

$(BUILD)/obj/cli/dist_mpi.o: cli/dist_mpi.c $(HDRS)
	@mkdir -p $(dir $@)
	$(MPICC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libresnet.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

OBJCOPY ?= objcopy
# The static library a program links (installed, the examples): the same objects as one, every
# symbol but the rn_ API (RN_API, default visibility) made local, so that the library's internal
# names (json_parse, zip_open, conv2d_forward, ...) cannot clash with the program's own or another
# library's. The CLI, the tests and dev/ link $(BUILD)/libresnet.a, internals included.
$(BUILD)/public/libresnet.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(LD) -r -o $(BUILD)/public/resnet.o $^
	$(OBJCOPY) --localize-hidden $(BUILD)/public/resnet.o
	ar rcs $@ $(BUILD)/public/resnet.o

$(BUILD)/resnet: $(CLI_OBJ) $(BUILD)/libresnet.a
	$(CLI_LD) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libresnet.a $(LDLIBS)

# The gradient reducer and the collectives under mpirun (tests/mpi.sh).
$(BUILD)/tests/mpi_reduce: tests/mpi_reduce.c $(BUILD)/obj/cli/dist_mpi.o $(HDRS)
	@mkdir -p $(dir $@)
	$(MPICC) $(CFLAGS) -Icli $(LDFLAGS) -o $@ $< $(BUILD)/obj/cli/dist_mpi.o

$(BUILD)/tests/%: tests/%.c $(BUILD)/libresnet.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libresnet.a $(LDLIBS)

# The README's embedding example, built against the installed-style header.
$(BUILD)/example: examples/classify.c $(BUILD)/public/libresnet.a include/resnet.h
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/public/libresnet.a $(LDLIBS)

# The kernel workbench (dev/): each program checks what it times.
DEV_BIN := $(patsubst dev/%.c,$(BUILD)/dev/%,$(wildcard dev/*.c))
dev: $(DEV_BIN)

$(BUILD)/dev/%: dev/%.c $(BUILD)/libresnet.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libresnet.a $(LDLIBS)

deps:
	@tools/install_deps.sh

# The main job: train the D2L ResNet-18 on the bundled Fashion-MNIST subset
# (5000 training / 1000 test images), evaluate it, save the checkpoint, the curves
# and the training report (an HTML page), and classify the 8 sample images by name.
RUN_DIR ?= $(BUILD)/run
run: deps all
	@mkdir -p $(RUN_DIR)
	$(BUILD)/resnet info --arch d2l_resnet18 --in-channels 1 --num-classes 10 --image-size 28 | tail -3
	$(BUILD)/resnet train --arch d2l_resnet18 --data data/fmnist-small --epochs 4 --batch-size 128 \
	    --lr 0.05 --momentum 0.9 --weight-decay 5e-4 --schedule cosine \
	    --save $(RUN_DIR)/d2l_resnet18_fmnist.safetensors --overwrite
	$(BUILD)/resnet eval --weights $(RUN_DIR)/d2l_resnet18_fmnist.safetensors --data data/fmnist-small
	$(BUILD)/resnet forward --weights $(RUN_DIR)/d2l_resnet18_fmnist.safetensors \
	    --input data/sample/fmnist_batch.npy --output $(RUN_DIR)/sample_logits.npy --print \
	    --true-labels data/sample/fmnist_batch_labels.txt
	@echo "checkpoint, log and curves are in $(RUN_DIR)/"
	@echo "training report (open in a browser): $(RUN_DIR)/d2l_resnet18_fmnist_report/report.html"

test: deps all
	@tests/run_all.sh $(BUILD)

ci: deps all
	@RN_CI=1 tests/run_all.sh $(BUILD)

# ---- sanitizers and fuzzing (clang 14 and its runtime: tools/install_deps.sh --clang) -----------
CLANG ?= clang-14
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -Wno-pass-failed
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzzers/%)
FUZZ_SECONDS ?= 15

$(BUILD)/fuzzers/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(BUILD)/libresnet.a $(HDRS) $(BUILD)/obj/cli/run_common.o $(BUILD)/obj/cli/args.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icli -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(BUILD)/obj/cli/run_common.o $(BUILD)/obj/cli/args.o \
	    $(BUILD)/libresnet.a $(LDLIBS)

fuzzers: $(FUZZ_BIN)

sanitize:
	@tools/install_deps.sh --clang
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/sanitize CC=$(CLANG) MPI=0 OPT=-O1 SAN="$(SAN_FLAGS)" all
	@tests/sanitize.sh $(BUILD)/sanitize

fuzz:
	@tools/install_deps.sh --clang
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzz CC=$(CLANG) MPI=0 OPT=-O1 \
	    SAN="$(SAN_FLAGS) -fsanitize=fuzzer-no-link" fuzzers
	@tests/fuzz.sh $(BUILD)/fuzz --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD)

# ---------------------------------------------------------------------------
# The library as a package: shared library with a soname, documentation
# generated from the CLI's flag tables, pkg-config file, install/uninstall.
#
#   make install PREFIX=/usr/local DESTDIR=      (LIBDIR, BINDIR, ... override the layout)
#   make uninstall PREFIX=/usr/local DESTDIR=
#
# The shared library exports only what include/resnet.h marks RN_API: every
# object is compiled with -fvisibility=hidden.
# ---------------------------------------------------------------------------
VERSION   := $(shell sed -n 's/^\#define RN_VERSION "\(.*\)"/\1/p' include/resnet.h)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))
SONAME    := libresnet.so.$(SOVERSION)
CFLAGS    += -fvisibility=hidden

PREFIX      ?= /usr/local
EXEC_PREFIX ?= $(PREFIX)
BINDIR      ?= $(EXEC_PREFIX)/bin
LIBDIR      ?= $(EXEC_PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL     ?= install
# what a static link needs besides libresnet.a (pkg-config --static, resnet-static.pc)
PC_LIBS_PRIVATE := -lm -lpthread$(if $(filter 1,$(HAVE_OPENMP)), -fopenmp,)
# the .pc files' folders relative to ${prefix} where they lie under it (pkg-config
# --define-prefix can then move an install)
PC_LIBDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

all: docs $(BUILD)/train_tiny
lib: $(BUILD)/$(SONAME)
docs: $(BUILD)/resnet.1 $(BUILD)/resnet.bash-completion

$(BUILD)/libresnet.so.$(VERSION): $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -o $@ $^ $(LDLIBS)

$(BUILD)/$(SONAME) $(BUILD)/libresnet.so: $(BUILD)/libresnet.so.$(VERSION)
	ln -sf libresnet.so.$(VERSION) $@

# The API-only example: training on an in-memory dataset (tests/install.sh builds it
# again against the installed library with pkg-config alone).
$(BUILD)/train_tiny: examples/train_tiny.c $(BUILD)/public/libresnet.a include/resnet.h
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/public/libresnet.a $(LDLIBS)

$(BUILD)/resnet.1: $(BUILD)/resnet
	$(BUILD)/resnet manpage > $@.tmp && mv $@.tmp $@

$(BUILD)/resnet.bash-completion: $(BUILD)/resnet
	$(BUILD)/resnet completion bash > $@.tmp && mv $@.tmp $@

install: lib cli docs
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 755 $(BUILD)/resnet $(DESTDIR)$(BINDIR)/resnet
	$(INSTALL) -m 644 include/resnet.h $(DESTDIR)$(INCLUDEDIR)/resnet.h
	$(INSTALL) -m 644 $(BUILD)/public/libresnet.a $(DESTDIR)$(LIBDIR)/libresnet.a
	$(INSTALL) -m 755 $(BUILD)/libresnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libresnet.so.$(VERSION)
	ln -sf libresnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libresnet.so
	for pc in resnet resnet-static; do \
	    sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(PC_LIBDIR)|' -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|' \
	        -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(PC_LIBS_PRIVATE)|' $$pc.pc.in \
	        > $(DESTDIR)$(PKGCONFIGDIR)/$$pc.pc && chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/$$pc.pc || exit 1; \
	done
	$(INSTALL) -m 644 $(BUILD)/resnet.1 $(DESTDIR)$(MANDIR)/man1/resnet.1
	$(INSTALL) -m 644 $(BUILD)/resnet.bash-completion $(DESTDIR)$(BASHCOMPDIR)/resnet
	@# a system-wide install (root, no DESTDIR): the dynamic linker's cache learns libresnet.so.0
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/resnet $(DESTDIR)$(INCLUDEDIR)/resnet.h \
	    $(DESTDIR)$(LIBDIR)/libresnet.a $(DESTDIR)$(LIBDIR)/libresnet.so \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libresnet.so.$(VERSION) \
	    $(DESTDIR)$(PKGCONFIGDIR)/resnet.pc $(DESTDIR)$(PKGCONFIGDIR)/resnet-static.pc \
	    $(DESTDIR)$(MANDIR)/man1/resnet.1 \
	    $(DESTDIR)$(BASHCOMPDIR)/resnet
