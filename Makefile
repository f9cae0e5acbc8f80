# perfguard/Makefile
#
# PGXS build.  `make && make install` builds and installs the module;
# `scripts/test.sh` runs every suite (regress, isolation, TAP, end-to-end)
# against throwaway clusters as an unprivileged OS user.

MODULE_big = perfguard
OBJS = \
	$(WIN32RES) \
	perfguard.o \
	src/store.o \
	src/fingerprint.o \
	src/scope.o \
	src/detect_nplusone.o \
	src/views.o \
	src/plan_insights.o \
	src/keyset.o \
	src/index_advice.o

EXTENSION = perfguard
DATA = perfguard--1.0.sql
PGFILEDESC = "perfguard - N+1, duplicate, slow-query and index advisor"

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -Werror

# pg_regress suites (one file per concern); run by scripts/test.sh with a
# temporary instance that preloads the library (perfguard.conf).
REGRESS = store fingerprint scopes nplusone guards privileges privileges_views beyond plan_insights index_advice index_advice_applied index_advice_hypopg keyset hostile
REGRESS_OPTS = --temp-config=$(srcdir)/perfguard.conf --temp-instance=./tmp_check
ISOLATION = nplusone_sessions reset_concurrent
ISOLATION_OPTS = --temp-config=$(srcdir)/perfguard.conf
TAP_TESTS = 1

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: every object depends on the shared header.
$(OBJS): src/perfguard.h
