/*-------------------------------------------------------------------------
 *
 * scope.c
 *		Per-backend request scopes and the detectors that live in them:
 *		N+1 runs, duplicate queries, write loops, queries per request, and the
 *		guard settings that turn them into errors.
 *
 * A scope groups the top-level statements of one request on one backend.
 * Its boundaries, in order of precedence (see the contract):
 *	1. explicit: perfguard.begin_request() .. end_request();
 *	2. sqlcommenter tags: a statement whose tags differ from the scope's
 *	   starts a new scope; statements without a comment never change it;
 *	3. an idle gap longer than perfguard.request_gap;
 *	4. for untagged traffic, the end of an explicit transaction block.
 * An untagged implicit scope is also cut after PFG_SCOPE_MAX_QUERIES
 * statements, so a busy connection that never pauses does not grow one
 * endless request.
 *
 * Everything here is backend-local and lock-free.  Per statement the cost is
 * two probes of small open-addressing tables (fingerprints, and
 * fingerprint+parameter-hash pairs) whose slots are invalidated in O(1) by a
 * generation counter when a scope ends.  Shared memory is touched only when
 * something becomes visible: a finding (flushed at the end of the statement
 * that changed it) and the scope's request statistics (at its end).
 *
 * The fix of a new N+1 or sequence finding is derived once, by the backend
 * that records it first (it is connected to the finding's database): the
 * store says when a finding has no fix yet, the finding is queued here, and
 * the queue is drained by the fix function perfguard.c registers, at the
 * end of an executor statement (or the start of the next one, or a view
 * read): never in the middle of transaction control, where no
 * subtransaction may start.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/scope.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "fingerprint.h"
#include "scope.h"
#include "sqlcommenter.h"
#include "store.h"

#define PFG_SCOPE_MAX_QUERIES	1000
#define PFG_MAX_FPS				(1 << 14)
#define PFG_MAX_PARAMS			(1 << 18)
#define PFG_COMMENT_LEN			512

/* One fingerprint seen in the current scope. */
typedef struct scopeFp
{
	uint64		queryid;
	CmdType		cmd;
	int32		repeats;
	int32		distinct;
	int32		max_same;		/* most executions of one parameter set */
	int32		dup_execs;		/* executions counted as duplicates */
	double		total_ms;
	double		first_ms;
	uint64		parent_queryid;
	bool		np_fired;
	bool		dup_fired;
	bool		wl_fired;
	bool		dirty;
	int8		ignore_state;	/* 0 unknown, 1 reported, 2 suppressed */
	bool		inband_ignored; /* a statement carried perfguard='ignore' */
	/* what has already been flushed to shared memory */
	bool		fl_np;
	bool		fl_dup;
	bool		fl_wl;
	int32		fl_np_repeats;
	int32		fl_wl_repeats;
	int32		fl_dup_execs;
	double		fl_np_wasted;
	double		fl_dup_wasted;
	double		fl_wl_wasted;
	char	   *example;		/* example parameters, capture_parameters */
	int16		seq_idx;		/* repeating sequence it belongs to, or -1 */
	void	   *hint[3];		/* where its findings were stored last */
	uint64		last_pos;		/* ring position of its last execution */
	bool		self;			/* perfguard's own report statement */
} scopeFp;

/* A repeating sequence of fingerprints (for each book: author, publisher). */
#define PFG_MAX_SEQS		8
#define PFG_RING			16
typedef struct scopeSeq
{
	uint64		id;				/* hash of the members */
	int			n;
	int32		fpidx[PFG_SEQ_MAX]; /* members, first-seen first */
	bool		fl_occ;
	int32		fl_repeats;
	double		fl_wasted;
} scopeSeq;

/* Hash slot of the fingerprint index. */
typedef struct fpSlot
{
	uint32		gen;
	int32		idx;
	uint64		queryid;
} fpSlot;

/* Hash slot of the (fingerprint, parameters) set. */
typedef struct paramSlot
{
	uint32		gen;
	int32		count;
	uint64		queryid;
	uint64		paramhash;
} paramSlot;

typedef struct pfgScope
{
	bool		open;
	bool		explicit_scope;
	bool		tagged;
	bool		xact;			/* started by BEGIN (rule 4) */
	bool		end_after;		/* end when the current statement ends */
	bool		dirty;
	bool		too_many_done;
	uint32		gen;			/* generation: invalidates all slots */
	uint64		first_exec;		/* exec_seq of its first execution */
	char		key[PFG_COMMENT_LEN];
	char		label[PFG_ROUTE_LEN];
	uint32		route_hash;
	int			framework;		/* pfgFramework of its tags */
	int64		queries;
	double		total_ms;
	TimestampTz last_end;
	uint64		last_select;
	uint64		last_multirow;
	/* fingerprints: dense array + index */
	scopeFp    *fps;
	int			nfps;
	int			fps_alloc;
	fpSlot	   *fpidx;
	int			fpidx_size;		/* power of two */
	/* recent fingerprints, and the sequences found in them */
	uint64		ring[PFG_RING];
	uint64		ring_n;
	scopeSeq	seqs[PFG_MAX_SEQS];
	int			nseqs;
	/* parameter sets */
	paramSlot  *params;
	int			params_size;	/* power of two */
	int			nparams;
} pfgScope;

static pfgScope scope;
static uint64 exec_seq = 0;		/* top-level executions seen */
static MemoryContext scope_cxt = NULL;
static bool scope_exit_registered = false;

/* last sqlcommenter comment seen, to make an unchanged one cost a memcmp */
static char last_comment[PFG_COMMENT_LEN];
static int	last_comment_len = -1;
static bool last_comment_tagged = false;
static char last_comment_key[PFG_COMMENT_LEN];
static char last_comment_label[PFG_ROUTE_LEN];
static bool last_comment_ignore = false;
static int	last_comment_framework = PFG_FW_NONE;
static int	last_span_off = -1;	/* span id position in last_comment */

/*---- fixes to derive (findings, issue 17) ----*/
#define PFG_MAX_PENDING_FIXES	16
typedef struct pendingFix
{
	pfgFindingKey key;
	int			framework;
	int			nq;
	uint64		queries[PFG_SEQ_MAX];
} pendingFix;
static pendingFix pending_fixes[PFG_MAX_PENDING_FIXES];
static int	npending_fixes = 0;

/* the last top-level execution's fingerprint (perfguard's own reports) */
static pfgScopeRef last_exec_ref;

/* The current statement carries perfguard='ignore'. */
static bool stmt_ignore = false;

static void scope_init(void);
static void scope_begin(bool explicit_scope, bool tagged, const char *key,
						const char *label);
static void scope_end(void);
static void scope_flush_findings(void);
static void seq_flush(Oid userid);
static void scope_atexit(int code, Datum arg);
static scopeFp *fp_lookup(uint64 queryid, bool *isnew);
static paramSlot *param_lookup(uint64 queryid, uint64 paramhash, bool *isnew);
static void capture_example(scopeFp *fp, const char *src, int loc, int len,
							ParamListInfo params);
static void scope_guard(int action, int sqlstate, scopeFp *fp,
						const char *src, int loc, int len);
static void fix_queue(const pfgFindingKey *key, int nq, const uint64 *queries);
static void fix_drain(void);

/*
 * The fix of an N+1, for the guard's hint: derived from the catalogs by a
 * module of the report layer, which perfguard.c registers here (this layer
 * may not call up into it).
 */
static pfg_fix_fn scope_fix_fn = NULL;

/*
 * pfg_scope_set_fix_fn
 *		Register the function that derives an N+1's fix for guard messages.
 */
void
pfg_scope_set_fix_fn(pfg_fix_fn fn)
{
	scope_fix_fn = fn;
}

/*
 * scope_init
 *		Backend-local set-up, done lazily at first use.
 */
static void
scope_init(void)
{
	if (scope_cxt != NULL)
		return;
	/*
	 * One large first block (served by mmap, away from the malloc heap that
	 * the executor's per-statement allocations use, whose layout the small
	 * blocks otherwise disturb measurably).
	 */
	scope_cxt = AllocSetContextCreate(TopMemoryContext, "perfguard scope",
									  0, 256 * 1024, 8 * 1024 * 1024);
	scope.fps_alloc = 64;
	scope.fps = MemoryContextAllocZero(scope_cxt, sizeof(scopeFp) * scope.fps_alloc);
	scope.fpidx_size = 128;
	scope.fpidx = MemoryContextAllocZero(scope_cxt, sizeof(fpSlot) * scope.fpidx_size);
	scope.params_size = 512;
	scope.params = MemoryContextAllocZero(scope_cxt, sizeof(paramSlot) * scope.params_size);
	scope.gen = 1;
}

/*
 * scope_begin
 *		Open a new scope.  The previous one must have been ended.
 */
static void
scope_begin(bool explicit_scope, bool tagged, const char *key,
			const char *label)
{
	scope_init();
	if (!scope_exit_registered)
	{
		before_shmem_exit(scope_atexit, (Datum) 0);
		scope_exit_registered = true;
	}
	scope.open = true;
	scope.explicit_scope = explicit_scope;
	scope.tagged = tagged;
	scope.xact = false;
	scope.end_after = false;
	scope.dirty = false;
	scope.too_many_done = false;
	strlcpy(scope.key, key ? key : "", sizeof(scope.key));
	if (label && label[0])
		strlcpy(scope.label, label, sizeof(scope.label));
	else
		strlcpy(scope.label, application_name ? application_name : "",
				sizeof(scope.label));
	scope.route_hash = pfg_route_hash(scope.label);
	scope.framework = PFG_FW_NONE;
	scope.queries = 0;
	scope.total_ms = 0;
	scope.last_select = 0;
	scope.last_multirow = 0;
	scope.nfps = 0;
	scope.nparams = 0;
	scope.ring_n = 0;
	scope.nseqs = 0;
	scope.gen++;
	if (scope.gen == 0)
	{
		/* wrapped: really clear the slots once */
		memset(scope.fpidx, 0, sizeof(fpSlot) * scope.fpidx_size);
		memset(scope.params, 0, sizeof(paramSlot) * scope.params_size);
		scope.gen = 1;
	}
}

/*
 * scope_end
 *		Close the current scope: flush its findings and account the request
 *		to its route.
 */
static void
scope_end(void)
{
	pfgRequestKey rkey;
	pfgRequestDelta d;
	int			i;

	if (!scope.open)
		return;
	scope_flush_findings();
	if (scope.queries > 0 && pfg_store_ready())
	{
		memset(&rkey, 0, sizeof(rkey));
		rkey.dbid = MyDatabaseId;
		rkey.userid = GetUserId();
		rkey.route_hash = scope.route_hash;
		d.queries = scope.queries;
		d.total_ms = scope.total_ms;
		d.had_n_plus_one = d.had_duplicate = d.had_write_loop = false;
		for (i = 0; i < scope.nfps; i++)
		{
			scopeFp    *fp = &scope.fps[i];

			if (fp->ignore_state == 2 || fp->self)
				continue;
			d.had_n_plus_one |= fp->np_fired;
			d.had_duplicate |= fp->dup_fired;
			d.had_write_loop |= fp->wl_fired;
		}
		pfg_store_record_request(&rkey, scope.label, &d);
	}
	for (i = 0; i < scope.nfps; i++)
	{
		if (scope.fps[i].example)
			pfree(scope.fps[i].example);
	}
	scope.nfps = 0;
	scope.open = false;
	scope.gen++;
}

static void
scope_atexit(int code, Datum arg)
{
	/* Only on a clean exit, and only while shared memory is attached. */
	if (code == 0 && scope.open && !proc_exit_inprogress)
		scope_end();
	else if (code == 0 && scope.open)
	{
		PG_TRY();
		{
			scope_end();
		}
		PG_CATCH();
		{
			FlushErrorState();
		}
		PG_END_TRY();
	}
}

/*---- hash tables ----*/

static inline uint32
mix64(uint64 v)
{
	v ^= v >> 33;
	v *= UINT64CONST(0xff51afd7ed558ccd);
	v ^= v >> 33;
	return (uint32) v;
}

static void
fpidx_rebuild(int newsize)
{
	fpSlot	   *n = MemoryContextAllocZero(scope_cxt, sizeof(fpSlot) * newsize);
	int			i;

	for (i = 0; i < scope.nfps; i++)
	{
		uint32		h = mix64(scope.fps[i].queryid) & (newsize - 1);

		while (n[h].gen == scope.gen)
			h = (h + 1) & (newsize - 1);
		n[h].gen = scope.gen;
		n[h].idx = i;
		n[h].queryid = scope.fps[i].queryid;
	}
	pfree(scope.fpidx);
	scope.fpidx = n;
	scope.fpidx_size = newsize;
}

/*
 * fp_lookup
 *		Find or add the fingerprint in the current scope.  NULL when the
 *		scope has reached PFG_MAX_FPS fingerprints.
 */
static scopeFp *
fp_lookup(uint64 queryid, bool *isnew)
{
	uint32		mask = scope.fpidx_size - 1;
	uint32		h = mix64(queryid) & mask;
	scopeFp    *fp;

	*isnew = false;
	for (;;)
	{
		fpSlot	   *s = &scope.fpidx[h];

		if (s->gen != scope.gen)
			break;
		if (s->queryid == queryid)
			return &scope.fps[s->idx];
		h = (h + 1) & mask;
	}

	if (scope.nfps >= PFG_MAX_FPS)
		return NULL;
	if (scope.nfps == scope.fps_alloc)
	{
		scope.fps_alloc *= 2;
		scope.fps = repalloc(scope.fps, sizeof(scopeFp) * scope.fps_alloc);
	}
	fp = &scope.fps[scope.nfps];
	memset(fp, 0, sizeof(scopeFp));
	fp->queryid = queryid;
	fp->seq_idx = -1;
	scope.fpidx[h].gen = scope.gen;
	scope.fpidx[h].idx = scope.nfps;
	scope.fpidx[h].queryid = queryid;
	scope.nfps++;
	if (scope.nfps * 2 > scope.fpidx_size)
		fpidx_rebuild(scope.fpidx_size * 2);
	*isnew = true;
	return fp;
}

static void
params_rebuild(int newsize)
{
	paramSlot  *n = MemoryContextAllocZero(scope_cxt, sizeof(paramSlot) * newsize);
	int			i;

	for (i = 0; i < scope.params_size; i++)
	{
		paramSlot  *o = &scope.params[i];
		uint32		h;

		if (o->gen != scope.gen)
			continue;
		h = mix64(o->queryid ^ o->paramhash) & (newsize - 1);
		while (n[h].gen == scope.gen)
			h = (h + 1) & (newsize - 1);
		n[h] = *o;
	}
	pfree(scope.params);
	scope.params = n;
	scope.params_size = newsize;
}

/*
 * param_lookup
 *		Find or add (fingerprint, parameter hash).  NULL when full.
 */
static paramSlot *
param_lookup(uint64 queryid, uint64 paramhash, bool *isnew)
{
	uint32		mask = scope.params_size - 1;
	uint32		h = mix64(queryid ^ paramhash) & mask;
	paramSlot  *s;

	*isnew = false;
	for (;;)
	{
		s = &scope.params[h];
		if (s->gen != scope.gen)
			break;
		if (s->queryid == queryid && s->paramhash == paramhash)
			return s;
		h = (h + 1) & mask;
	}
	if (scope.nparams >= PFG_MAX_PARAMS)
		return NULL;
	s->gen = scope.gen;
	s->queryid = queryid;
	s->paramhash = paramhash;
	s->count = 0;
	scope.nparams++;
	*isnew = true;
	if (scope.nparams * 2 > scope.params_size)
	{
		params_rebuild(scope.params_size * 2);
		/* find it again in the new table */
		mask = scope.params_size - 1;
		h = mix64(queryid ^ paramhash) & mask;
		while (!(scope.params[h].queryid == queryid &&
				 scope.params[h].paramhash == paramhash))
			h = (h + 1) & mask;
		s = &scope.params[h];
	}
	return s;
}

/*---- scope boundaries ----*/

/*
 * comment_is_cached
 *		Does the statement end with exactly the last comment seen?  Checks the
 *		delimiters where they must be and compares the content: no backward
 *		scan, which matters because ORMs send the same comment on every
 *		statement of a request.
 */
static inline bool
comment_is_cached(const char *s, int len)
{
	int			end = len;
	int			start;

	if (last_comment_len < 0)
		return false;
	while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\n' ||
					   s[end - 1] == ';' || s[end - 1] == '\t' ||
					   s[end - 1] == '\r'))
		end--;
	start = end - 2 - last_comment_len;
	if (start < 2 || s[end - 1] != '/' || s[end - 2] != '*' ||
		s[start - 2] != '/' || s[start - 1] != '*')
		return false;
	if (last_span_off < 0)
		return memcmp(s + start, last_comment, last_comment_len) == 0;

	/*
	 * OpenTelemetry puts the current span in traceparent, so the comment
	 * changes on every statement of a request while the request (the trace
	 * id) does not: compare all but the 16 hex digits of the span id.
	 */
	return memcmp(s + start, last_comment, last_span_off) == 0 &&
		memcmp(s + start + last_span_off + 16, last_comment + last_span_off + 16,
			   last_comment_len - last_span_off - 16) == 0;
}

/*
 * span_offset
 *		Offset of the span id inside traceparent='00-<trace id>-<span id>-..'
 *		in a comment, or -1.
 */
static int
span_offset(const char *c, int len)
{
	const char *tp = memmem(c, len, "traceparent='", 13);
	int			off;

	if (tp == NULL)
		return -1;
	off = (tp - c) + 13 + 3 + 32 + 1;	/* past "00-", the trace id, "-" */
	if (off + 16 + 1 > len || c[off - 1] != '-' || c[off + 16] != '-' ||
		c[off - 33 - 1] != '-')
		return -1;
	return off;
}

/*
 * pfg_scope_statement_start
 *		Called at the start of every top-level statement: applies the idle gap
 *		and the sqlcommenter rules, and opens a scope if none is open.
 */
void
pfg_scope_statement_start(const char *src, int loc, int len)
{
	const char *cstart;
	int			clen;

	if (scope.open && !scope.explicit_scope && scope.last_end != 0 &&
		GetCurrentStatementStartTimestamp() - scope.last_end >
		(TimestampTz) pfg_request_gap * 1000)
		scope_end();

	stmt_ignore = false;
	if (src != NULL && comment_is_cached(src + loc, len))
	{
		/* the same comment as the last statement's: one memcmp */
		cstart = last_comment;
		clen = last_comment_len;
	}
	else if (src != NULL && pfg_trailing_comment(src, loc, len, &cstart, &clen))
	{
		if (clen != last_comment_len || clen >= PFG_COMMENT_LEN ||
			memcmp(cstart, last_comment, clen) != 0)
		{
			last_comment_tagged = pfg_parse_tags(cstart, clen,
												 last_comment_key,
												 sizeof(last_comment_key),
												 last_comment_label,
												 sizeof(last_comment_label),
												 &last_comment_ignore);
			last_comment_framework = pfg_tag_framework(cstart, clen);
			if (clen < PFG_COMMENT_LEN)
			{
				memcpy(last_comment, cstart, clen);
				last_comment_len = clen;
				last_span_off = span_offset(last_comment, clen);
			}
			else
				last_comment_len = -1;
		}
	}
	else
		cstart = NULL;

	if (cstart != NULL)
	{
		stmt_ignore = last_comment_ignore;
		if (last_comment_tagged && !(scope.open && scope.explicit_scope) &&
			(!scope.open || !scope.tagged ||
			 strcmp(scope.key, last_comment_key) != 0))
		{
			scope_end();
			scope_begin(false, true, last_comment_key, last_comment_label);
		}
		/* the framework of any tagged statement (explicit scopes too) */
		if (scope.open && scope.framework == PFG_FW_NONE)
			scope.framework = last_comment_framework;
	}

	if (scope.open && !scope.explicit_scope && !scope.tagged &&
		scope.queries >= PFG_SCOPE_MAX_QUERIES)
		scope_end();

	if (!scope.open)
		scope_begin(false, false, NULL, NULL);
}

/*
 * pfg_scope_utility
 *		Rule 4: for untagged traffic outside an explicit scope, BEGIN starts
 *		a scope and the end of the transaction block ends it.
 */
void
pfg_scope_utility(Node *parsetree)
{
	TransactionStmt *ts;

	if (!IsA(parsetree, TransactionStmt))
		return;
	if (scope.open && (scope.explicit_scope || scope.tagged))
		return;
	ts = (TransactionStmt *) parsetree;
	switch (ts->kind)
	{
		case TRANS_STMT_BEGIN:
		case TRANS_STMT_START:
			if (!IsTransactionBlock())
			{
				scope_end();
				scope_begin(false, false, NULL, NULL);
				scope.xact = true;
			}
			break;
		case TRANS_STMT_COMMIT:
		case TRANS_STMT_ROLLBACK:
		case TRANS_STMT_PREPARE:
			if (scope.open && scope.xact)
				scope.end_after = true;
			break;
		default:
			break;
	}
}

/*
 * pfg_scope_statement_end
 *		Called at the end of every top-level statement: remembers the time
 *		(for the idle gap), flushes findings that changed, and ends the scope
 *		if the statement ended a transaction block that started it.
 */
void
pfg_scope_statement_end(double exec_ms)
{
	if (!scope.open)
		return;
	/*
	 * The end of an executor statement is its start plus its run time (an
	 * underestimate by the parse/plan/send time, immaterial against
	 * request_gap), which saves a clock read; utilities read the clock.
	 */
	if (exec_ms >= 0)
		scope.last_end = GetCurrentStatementStartTimestamp() +
			(TimestampTz) (exec_ms * 1000.0);
	else
		scope.last_end = GetCurrentTimestamp();
	if (scope.dirty)
		scope_flush_findings();
	if (scope.end_after)
		scope_end();
	/* not after transaction control (exec_ms < 0 is a utility statement) */
	if (unlikely(npending_fixes > 0) && exec_ms >= 0)
		fix_drain();
}

/*---- detectors ----*/

/*
 * seq_detect
 *		The current fingerprint ran p = 2..5 statements ago: do the last 3p
 *		statements of the request repeat that period of p distinct
 *		fingerprints?  At most 2p + p(p-1)/2 comparisons, and only for a
 *		fingerprint not yet in a sequence whose previous run was 2 to 5
 *		statements back (never for a fingerprint repeated back to back).
 */
static void
seq_detect(int p)
{
	int			i,
				j;
	scopeSeq   *sq;
	int32		members[PFG_SEQ_MAX];
	int			first;
	uint64		id;

#define RING(i) scope.ring[(scope.ring_n - 1 - (i)) & (PFG_RING - 1)]
	if (scope.ring_n < (uint64) (3 * p))
		return;
	for (i = 0; i < 2 * p; i++)
		if (RING(i) != RING(i + p))
			return;
	for (i = 0; i < p; i++)
		for (j = i + 1; j < p; j++)
			if (RING(i) == RING(j))
				return;

	/* members in execution order, rotated to start at the first seen */
	for (i = 0; i < p; i++)
	{
		bool		isnew;
		scopeFp    *m = fp_lookup(RING(p - 1 - i), &isnew);

		if (m == NULL || isnew || m->seq_idx >= 0)
			return;
		members[i] = m - scope.fps;
	}
#undef RING
	first = 0;
	for (i = 1; i < p; i++)
		if (members[i] < members[first])
			first = i;
	if (scope.nseqs >= PFG_MAX_SEQS)
	{
		pfg_store_count_dropped_event();
		return;
	}
	sq = &scope.seqs[scope.nseqs];
	memset(sq, 0, sizeof(scopeSeq));
	sq->n = p;
	id = UINT64CONST(0x53455155454e4345);
	for (i = 0; i < p; i++)
	{
		sq->fpidx[i] = members[(first + i) % p];
		id = (id ^ scope.fps[sq->fpidx[i]].queryid) * UINT64CONST(0x100000001b3);
		scope.fps[sq->fpidx[i]].seq_idx = scope.nseqs;
		scope.fps[sq->fpidx[i]].dirty = true;
	}
	sq->id = id ? id : 1;
	scope.nseqs++;
	scope.dirty = true;
}

/*
 * pfg_scope_executor_start
 *		Account one top-level execution in the current scope, run the
 *		detectors and the guard settings.  Fills "ref" so that the end of the
 *		execution can add its time.  May ERROR only through a guard setting
 *		at "error".
 */
void
pfg_scope_executor_start(pfgScopeRef *ref, uint64 queryid, CmdType cmd,
						 uint64 paramhash, const char *src, int loc, int len,
						 ParamListInfo params)
{
	scopeFp    *fp;
	paramSlot  *ps;
	bool		isnew;
	bool		newparams;
	int			np_action = PFG_GUARD_OFF;
	int			dup_action = PFG_GUARD_OFF;

	ref->gen = 0;
	ref->fpidx = -1;
	ref->np_add = 0;
	ref->dup_add = 0;

	if (unlikely(npending_fixes > 0))
		fix_drain();

	exec_seq++;
	if (!scope.open)
		return;
	if (scope.queries == 0)
		scope.first_exec = exec_seq;
	scope.queries++;

	fp = fp_lookup(queryid, &isnew);
	if (fp == NULL)
	{
		pfg_store_count_dropped_event();
		return;
	}
	if (isnew)
	{
		fp->cmd = cmd;
		if (scope.last_multirow != 0 && scope.last_multirow != queryid)
			fp->parent_queryid = scope.last_multirow;
		else if (scope.last_select != queryid)
			fp->parent_queryid = scope.last_select;
	}
	fp->repeats++;
	ref->gen = scope.gen;
	ref->fpidx = fp - scope.fps;
	last_exec_ref = *ref;

	scope.ring[scope.ring_n & (PFG_RING - 1)] = queryid;
	scope.ring_n++;
	if (fp->seq_idx >= 0)
		scope.dirty = true;
	else if (fp->repeats >= 3 && scope.ring_n - fp->last_pos >= 2 &&
			 scope.ring_n - fp->last_pos <= PFG_SEQ_MAX)
		seq_detect((int) (scope.ring_n - fp->last_pos));
	fp->last_pos = scope.ring_n;

	ps = param_lookup(queryid, paramhash, &newparams);
	if (ps != NULL)
	{
		ps->count++;
		if (newparams)
			fp->distinct++;
		if (ps->count > fp->max_same)
			fp->max_same = ps->count;
	}

	if (stmt_ignore)
	{
		fp->ignore_state = 2;
		fp->inband_ignored = true;
	}

	if (cmd == CMD_SELECT)
	{
		/* N+1: enough distinct parameter sets, after a parent in an implicit
		 * scope (tagged and explicit scopes are trusted). */
		if (!fp->np_fired && fp->distinct >= pfg_n_plus_one_threshold &&
			(fp->parent_queryid != 0 || scope.tagged || scope.explicit_scope))
		{
			fp->np_fired = true;
			fp->dirty = true;
			scope.dirty = true;
			ref->np_add = fp->repeats;
			np_action = pfg_on_n_plus_one;
		}
		else if (fp->np_fired)
		{
			ref->np_add = 1;
			fp->dirty = true;
			scope.dirty = true;
		}

		/* duplicates: one parameter set executed duplicate_threshold times */
		if (ps != NULL && ps->count >= pfg_duplicate_threshold)
		{
			int			add = (ps->count == pfg_duplicate_threshold) ?
				pfg_duplicate_threshold - 1 : 1;

			fp->dup_execs += add;
			ref->dup_add = add;
			fp->dirty = true;
			scope.dirty = true;
			if (!fp->dup_fired)
			{
				fp->dup_fired = true;
				dup_action = pfg_on_duplicate;
			}
		}
	}
	else if (cmd == CMD_INSERT || cmd == CMD_UPDATE || cmd == CMD_DELETE ||
			 cmd == CMD_MERGE)
	{
		if (fp->repeats >= pfg_write_loop_threshold)
		{
			fp->wl_fired = true;
			fp->dirty = true;
			scope.dirty = true;
		}
	}

	/*
	 * Suppression is looked up once per request and fingerprint, when a
	 * detector first fires: a suppressed finding is still recorded (as
	 * ignored) but never triggers a guard nor flags the request.
	 */
	if ((fp->np_fired || fp->dup_fired || fp->wl_fired) && fp->ignore_state == 0)
		fp->ignore_state = pfg_store_is_ignored(queryid, scope.route_hash) ? 2 : 1;
	if (fp->ignore_state == 2)
		np_action = dup_action = PFG_GUARD_OFF;

	if ((fp->np_fired || fp->dup_fired || fp->wl_fired) &&
		pfg_capture_parameters && fp->example == NULL)
		capture_example(fp, src, loc, len, params);

	if (np_action != PFG_GUARD_OFF)
		scope_guard(np_action, ERRCODE_PFG_N_PLUS_ONE, fp, src, loc, len);
	if (dup_action != PFG_GUARD_OFF)
		scope_guard(dup_action, ERRCODE_PFG_DUPLICATE, fp, src, loc, len);

	if (pfg_max_queries_per_request > 0 && !scope.too_many_done &&
		scope.queries > pfg_max_queries_per_request &&
		pfg_on_too_many_queries != PFG_GUARD_OFF)
	{
		int			elevel = pfg_on_too_many_queries == PFG_GUARD_ERROR ? ERROR :
			pfg_on_too_many_queries == PFG_GUARD_WARNING ? WARNING : LOG;

		scope.too_many_done = true;
		ereport(elevel,
				(errcode(ERRCODE_PFG_TOO_MANY_QUERIES),
				 errmsg("perfguard: request \"%s\" ran %lld queries, more than perfguard.max_queries_per_request (%d)",
						scope.label, (long long) scope.queries,
						pfg_max_queries_per_request),
				 errhint("Load related rows with joins or prefetching, or raise perfguard.max_queries_per_request.")));
	}
}

/*
 * capture_example
 *		Keep one example parameter set for a finding (capture_parameters).
 *		Output functions may fail: such a failure only loses the example.
 */
static void
capture_example(scopeFp *fp, const char *src, int loc, int len,
				ParamListInfo params)
{
	MemoryContext old = MemoryContextSwitchTo(scope_cxt);
	char	   *volatile example = NULL;

	PG_TRY();
	{
		example = pfg_format_params(src, loc, len, params);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(scope_cxt);
		FlushErrorState();
		example = NULL;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	fp->example = example;
}

/*
 * scope_guard
 *		Apply a guard setting to the statement that crossed a threshold.  The
 *		message names the repeated statement and the count; the hint gives the
 *		fix (derived from the foreign keys, which is allowed here: this runs
 *		once per scope and fingerprint, not per statement).
 */
static void
scope_guard(int action, int sqlstate, scopeFp *fp,
			const char *src, int loc, int len)
{
	int			elevel = action == PFG_GUARD_ERROR ? ERROR :
		action == PFG_GUARD_WARNING ? WARNING : LOG;
	char	   *volatile text = NULL;
	char	   *volatile hint = NULL;
	char	   *volatile parent = NULL;
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		int			n = len;

		text = pfg_normalize_query(src, loc, &n);
		if (sqlstate == ERRCODE_PFG_N_PLUS_ONE)
		{
			pfgFix		fix;
			const char *q = text;

			parent = pfg_store_get_query(GetUserId(), MyDatabaseId,
										 fp->parent_queryid, true);
			if (scope_fix_fn)
				hint = scope_fix_fn(parent, &q, 1, scope.framework, &fix);
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
	}
	PG_END_TRY();

	if (sqlstate == ERRCODE_PFG_N_PLUS_ONE)
		ereport(elevel,
				(errcode(sqlstate),
				 errmsg("perfguard: N+1 query: the same statement ran %d times with different parameters in request \"%s\"",
						fp->repeats, scope.label),
				 errdetail("Statement: %s%s%s", text ? text : "(unavailable)",
						   parent ? "\nParent: " : "", parent ? parent : ""),
				 errhint("%s", hint ? hint : "Load the related rows in the parent query (a JOIN, select_related/prefetch_related, includes).")));
	else
		ereport(elevel,
				(errcode(sqlstate),
				 errmsg("perfguard: duplicate query: the same statement with the same parameters ran %d times in request \"%s\"",
						fp->max_same, scope.label),
				 errdetail("Statement: %s", text ? text : "(unavailable)"),
				 errhint("Run it once and reuse the result (keep it in a variable or cache it), or hoist it out of the loop.")));
}

/*
 * pfg_scope_executor_end
 *		Add an execution's time to its fingerprint in the scope (if the scope
 *		is still the one it started in) and fill the per-statement counters.
 */
void
pfg_scope_executor_end(pfgScopeRef *ref, uint64 queryid, CmdType cmd,
					   double ms, int64 rows, pfgExecStats *st)
{
	st->n_plus_one_calls = ref->np_add;
	st->duplicate_calls = ref->dup_add;
	if (ref->gen == 0 || ref->gen != scope.gen || !scope.open)
		return;
	if (ref->fpidx >= 0 && ref->fpidx < scope.nfps)
	{
		scopeFp    *fp = &scope.fps[ref->fpidx];

		if (fp->repeats == 1)
			fp->first_ms = ms;
		fp->total_ms += ms;
	}
	scope.total_ms += ms;
	if (cmd == CMD_SELECT)
	{
		scope.last_select = queryid;
		if (rows >= 2)
			scope.last_multirow = queryid;
	}
}

/*
 * scope_flush_findings
 *		Push what changed since the last flush into shared memory, as deltas.
 */
static void
scope_flush_findings(void)
{
	int			i;
	pfgFindingKey key;
	Oid			userid;

	if (!scope.dirty || !pfg_store_ready())
	{
		scope.dirty = false;
		return;
	}
	userid = GetUserId();
	for (i = 0; i < scope.nfps; i++)
	{
		scopeFp    *fp = &scope.fps[i];
		pfgFindingDelta d;
		double		mean;

		if (!fp->dirty)
			continue;
		fp->dirty = false;
		if (fp->self)
			continue;			/* perfguard's own report statement */
		mean = fp->repeats > 0 ? fp->total_ms / fp->repeats : 0;

		memset(&key, 0, sizeof(key));
		key.dbid = MyDatabaseId;
		key.userid = userid;
		key.route_hash = scope.route_hash;
		key.queryid = fp->queryid;
		/* rules are applied at report time; only in-band is recorded */
		key.ignored = fp->inband_ignored;

		if (fp->np_fired)
		{
			double		wasted = fp->total_ms - fp->first_ms;

			key.kind = PFG_FIND_NPLUSONE;
			key.parent_queryid = fp->parent_queryid;
			memset(&d, 0, sizeof(d));
			d.new_occurrence = !fp->fl_np;
			d.repeats = fp->repeats - fp->fl_np_repeats;
			d.scope_repeats = fp->repeats;
			d.scope_distinct = fp->distinct;
			d.scope_max_same = fp->max_same;
			d.duplicates = 0;
			d.wasted_ms = wasted - fp->fl_np_wasted;
			d.scope_total = fp->repeats;
			d.scope_wasted_ms = wasted;
			d.cmdtype = fp->cmd;
			d.example_params = fp->example;
			d.framework = scope.framework;
			if (fp->seq_idx >= 0)
				d.seq_id = scope.seqs[fp->seq_idx].id;
			if (pfg_store_record_finding(&key, scope.label, &d, &fp->hint[0]))
				fix_queue(&key, 1, &fp->queryid);
			fp->fl_np = true;
			fp->fl_np_repeats = fp->repeats;
			fp->fl_np_wasted = wasted;
		}
		if (fp->dup_fired)
		{
			double		wasted = fp->dup_execs * mean;

			key.kind = PFG_FIND_DUPLICATE;
			key.parent_queryid = 0;
			memset(&d, 0, sizeof(d));
			d.new_occurrence = !fp->fl_dup;
			d.scope_repeats = fp->repeats;
			d.scope_distinct = fp->distinct;
			d.duplicates = fp->dup_execs - fp->fl_dup_execs;
			d.scope_max_same = fp->max_same;
			d.wasted_ms = wasted - fp->fl_dup_wasted;
			d.scope_total = fp->dup_execs;
			d.scope_wasted_ms = wasted;
			d.cmdtype = fp->cmd;
			d.example_params = fp->example;
			d.framework = scope.framework;
			pfg_store_record_finding(&key, scope.label, &d, &fp->hint[1]);
			fp->fl_dup = true;
			fp->fl_dup_execs = fp->dup_execs;
			fp->fl_dup_wasted = wasted;
		}
		if (fp->wl_fired)
		{
			double		wasted = fp->total_ms - fp->first_ms;

			key.kind = PFG_FIND_WRITELOOP;
			key.parent_queryid = 0;
			memset(&d, 0, sizeof(d));
			d.new_occurrence = !fp->fl_wl;
			d.repeats = fp->repeats - fp->fl_wl_repeats;
			d.scope_repeats = fp->repeats;
			d.scope_distinct = fp->distinct;
			d.wasted_ms = wasted - fp->fl_wl_wasted;
			d.scope_total = fp->repeats;
			d.scope_wasted_ms = wasted;
			d.cmdtype = fp->cmd;
			d.example_params = fp->example;
			d.framework = scope.framework;
			pfg_store_record_finding(&key, scope.label, &d, &fp->hint[2]);
			fp->fl_wl = true;
			fp->fl_wl_repeats = fp->repeats;
			fp->fl_wl_wasted = wasted;
		}
	}
	seq_flush(userid);
	scope.dirty = false;
}

/*
 * seq_flush
 *		Record the request's repeating sequences: one finding each, keyed by
 *		the sequence, with its members; iterations = the least repeated
 *		member's count.
 */
static void
seq_flush(Oid userid)
{
	int			i;

	for (i = 0; i < scope.nseqs; i++)
	{
		scopeSeq   *sq = &scope.seqs[i];
		pfgFindingKey key;
		pfgFindingDelta d;
		uint64		members[PFG_SEQ_MAX];
		int32		iters = INT32_MAX;
		double		wasted = 0;
		bool		ignored = false;
		int			k;

		for (k = 0; k < sq->n; k++)
		{
			scopeFp    *m = &scope.fps[sq->fpidx[k]];

			members[k] = m->queryid;
			iters = Min(iters, m->repeats);
			wasted += m->total_ms - m->first_ms;
			ignored |= m->inband_ignored;
		}
		if (sq->fl_occ && iters == sq->fl_repeats)
			continue;
		memset(&key, 0, sizeof(key));
		key.kind = PFG_FIND_SEQUENCE;
		key.ignored = ignored;
		key.dbid = MyDatabaseId;
		key.userid = userid;
		key.route_hash = scope.route_hash;
		key.queryid = sq->id;
		key.parent_queryid = scope.fps[sq->fpidx[0]].parent_queryid;
		memset(&d, 0, sizeof(d));
		d.new_occurrence = !sq->fl_occ;
		d.repeats = iters - sq->fl_repeats;
		d.scope_repeats = iters;
		d.wasted_ms = wasted - sq->fl_wasted;
		d.cmdtype = CMD_SELECT;
		d.nseq = sq->n;
		d.seq = members;
		d.framework = scope.framework;
		if (pfg_store_record_finding(&key, scope.label, &d, NULL))
			fix_queue(&key, sq->n, members);
		sq->fl_occ = true;
		sq->fl_repeats = iters;
		sq->fl_wasted = wasted;
	}
}

/*
 * pfg_scope_flush
 *		Make this backend's open scope visible (called by the views, whose
 *		own statement records no finding).
 */
void
pfg_scope_flush(void)
{
	/* the views call this: the running statement is a report */
	pfg_scope_exclude(&last_exec_ref);
	if (scope.open && scope.dirty)
		scope_flush_findings();
	if (npending_fixes > 0)
		fix_drain();
}

/*
 * pfg_scope_begin_explicit
 *		perfguard.begin_request(label): end whatever scope is open and open an
 *		explicit one, which only end_request() or the next begin_request()
 *		ends.
 */
void
pfg_scope_begin_explicit(const char *label)
{
	/*
	 * The statement that calls begin_request() belongs to no request: when
	 * it opened a scope of its own (a sqlcommenter tag on it, or an idle gap
	 * before it), drop that scope instead of counting a one-statement request.
	 */
	if (scope.open && scope.queries == 1 && scope.first_exec == exec_seq &&
		!scope.dirty && !scope.explicit_scope)
	{
		scope.open = false;
		scope.nfps = 0;
		scope.gen++;
	}
	scope_end();
	scope_begin(true, false, NULL, label);
}

/*
 * pfg_scope_end_explicit
 *		perfguard.end_request(): summary of the scope, then end it.  The
 *		statement that calls end_request() is not counted.  Returns false when
 *		no explicit scope is open.
 */
bool
pfg_scope_end_explicit(int64 *queries, double *total_ms, int32 *n_plus_one,
					   int32 *duplicates, int32 *write_loops)
{
	int			i;

	if (!scope.open || !scope.explicit_scope)
		return false;
	*queries = scope.queries > 0 ? scope.queries - 1 : 0;
	*total_ms = scope.total_ms;
	*n_plus_one = *duplicates = *write_loops = 0;
	for (i = 0; i < scope.nfps; i++)
	{
		if (scope.fps[i].ignore_state == 2 || scope.fps[i].self)
			continue;			/* suppressed, or perfguard's own */
		if (scope.fps[i].np_fired)
			(*n_plus_one)++;
		if (scope.fps[i].dup_fired)
			(*duplicates)++;
		if (scope.fps[i].wl_fired)
			(*write_loops)++;
	}
	/* the end_request() statement itself belongs to no request */
	if (scope.queries > 0)
		scope.queries--;
	scope_end();
	return true;
}

/*---- findings: route, report statements, fixes (issue 17) ----*/

/*
 * pfg_scope_route
 *		The label (route) of the open scope, or NULL: the plan samples of a
 *		statement carry the route of the request that ran it.
 */
const char *
pfg_scope_route(void)
{
	return scope.open ? scope.label : NULL;
}

/*
 * pfg_scope_exclude
 *		The execution "ref" was perfguard's own report statement (report.c
 *		marked it while it ran): its fingerprint records no finding and flags
 *		no request.  Called at its end, before the statement's flush.
 */
void
pfg_scope_exclude(const pfgScopeRef *ref)
{
	if (ref->gen != 0 && ref->gen == scope.gen && scope.open &&
		ref->fpidx >= 0 && ref->fpidx < scope.nfps)
		scope.fps[ref->fpidx].self = true;
}

/*
 * fix_queue
 *		Remember a finding whose fix this backend claimed (the store said it
 *		has none): fix_drain derives it where a subtransaction may start.
 *		A full queue drops it; the report then derives the fix itself when it
 *		runs in the finding's database.
 */
static void
fix_queue(const pfgFindingKey *key, int nq, const uint64 *queries)
{
	pendingFix *pf;

	if (scope_fix_fn == NULL || npending_fixes >= PFG_MAX_PENDING_FIXES)
		return;
	pf = &pending_fixes[npending_fixes++];
	pf->key = *key;
	pf->framework = scope.framework;
	pf->nq = Min(nq, PFG_SEQ_MAX);
	memcpy(pf->queries, queries, sizeof(uint64) * pf->nq);
}

/*
 * fix_drain
 *		Derive and store the fixes of the queued findings.  Only inside a
 *		healthy transaction, outside parallel mode and never during
 *		transaction control (the callers are executor paths): the fix
 *		function starts a subtransaction, which BeginInternalSubTransaction
 *		refuses (FATAL) in the middle of BEGIN, SAVEPOINT or ROLLBACK.  Each
 *		entry leaves the queue before its fix is derived, so a failure (a
 *		query cancel, re-thrown) never repeats.  Once per new finding, never
 *		per statement.
 */
static void
fix_drain(void)
{
	MemoryContext cxt;
	MemoryContext old;

	if (!IsTransactionState() || IsAbortedTransactionBlockState() ||
		IsInParallelMode() || !pfg_store_ready())
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "perfguard fixes",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	while (npending_fixes > 0)
	{
		pendingFix	pf = pending_fixes[--npending_fixes];
		const char *texts[PFG_SEQ_MAX];
		char	   *parent;
		pfgFix	   *fix = palloc0(sizeof(pfgFix));
		int			i;

		parent = pfg_store_get_query(pf.key.userid, pf.key.dbid,
									 pf.key.parent_queryid, true);
		for (i = 0; i < pf.nq; i++)
			texts[i] = pfg_store_get_query(pf.key.userid, pf.key.dbid,
										   pf.queries[i], true);
		(void) scope_fix_fn(parent, texts, pf.nq, pf.framework, fix);
		pfg_store_set_finding_fix(&pf.key, fix);
		MemoryContextReset(cxt);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}
