# perfguard/Makefile
#
# PGXS build.  `make && make install` builds and installs the module;
# `scripts/test.sh` runs every suite (regress, isolation, TAP, end-to-end)
# against throwaway clusters as an unprivileged OS user.

MODULE_big = perfguard
# In layers, bottom first; each file may use only files above it in this
# list's order of layers (docs/design.md draws the map).
OBJS = \
	$(WIN32RES) \
	src/table.o \
	src/persist.o \
	src/fingerprint.o \
	src/sqlcommenter.o \
	src/text_mask.o \
	src/store.o \
	src/store_plans.o \
	src/store_advice.o \
	src/store_cache.o \
	src/store_requests.o \
	src/store_pending.o \
	src/store_evidence.o \
	src/scope_comments.o \
	src/scope_findings.o \
	src/scope.o \
	src/plan_checks.o \
	src/plan_sample.o \
	src/report.o \
	src/fix_text.o \
	src/nplusone_fix.o \
	src/hypo_index.o \
	src/index_candidates.o \
	src/index_evidence.o \
	src/index_advice.o \
	src/keyset_cursor.o \
	src/keyset.o \
	src/findings.o \
	src/store_views.o \
	perfguard.o

EXTENSION = perfguard
DATA = perfguard--1.0.sql
PGFILEDESC = "perfguard - N+1, duplicate, slow-query and index advisor"

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -Werror

# pg_regress suites (one file per concern); run by scripts/test.sh with a
# temporary instance that preloads the library (perfguard.conf).
REGRESS = store fingerprint scopes nplusone guards privileges privileges_views suppression parameters errors percentiles sequences findings plan_insights index_advice index_advice_applied index_advice_hypopg keyset hostile index_advice_dexter index_advice_qualstats index_advice_cases index_advice_evidence
REGRESS_OPTS = --temp-config=$(srcdir)/perfguard.conf --temp-instance=./tmp_check
ISOLATION = nplusone_sessions reset_concurrent requests_shared requests_two_ids requests_boxes pending_counters
ISOLATION_OPTS = --temp-config=$(srcdir)/perfguard.conf
TAP_TESTS = 1

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Header dependencies: the compiler writes each object's list of headers
# (-MMD) next to it, and make reads them back, so a change to one module's
# header rebuilds only the objects that include it.  In CFLAGS, not
# CPPFLAGS: the LLVM bitcode (.bc) compile of the same source reads
# CPPFLAGS too, and its list (of the .bc) overwrote the object's.
override CFLAGS += -MMD -MP
-include $(OBJS:.o=.d)
EXTRA_CLEAN = $(OBJS:.o=.d)
# ... and a bitcode file is rebuilt with its object (same source, same headers)
$(OBJS:.o=.bc): %.bc: %.o
