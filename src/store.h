/*-------------------------------------------------------------------------
 *
 * store.h
 *		The statistics tables in shared memory (statements, scope findings,
 *		requests per route, failed statements, suppression rules) and the
 *		entry points through which perfguard's shared memory is sized and
 *		created.  store.c is the only owner of shared memory: the plan
 *		tables (store_plans.h) and the remembered advice (store_advice.h)
 *		are parts of this layer that store.c sizes and attaches.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_STORE_H
#define PFG_STORE_H

#include "datatype/timestamp.h"
#include "nodes/nodes.h"

#include "perfguard.h"
#include "table.h"

/* Counters of one statement; protected by the entry's spinlock. */
typedef struct pfgCounters
{
	int64		calls;
	double		total_ms;
	double		min_ms;
	double		max_ms;
	double		mean_ms;		/* Welford running mean */
	double		sum_var_ms;		/* Welford running M2 */
	int64		rows;
	int64		shared_blks_hit;
	int64		shared_blks_read;
	int64		temp_blks_written;
	int64		duplicate_calls;
	int64		n_plus_one_calls;
	TimestampTz first_seen;
	TimestampTz last_seen;
	uint32		hist[PFG_HIST_BUCKETS]; /* latency histogram */
	struct
	{
		int32		window;		/* window number (time / perfguard.window) */
		int32		calls;
		float4		total_ms;
	}			win[PFG_WINDOWS];	/* ring of recent windows */
} pfgCounters;

typedef struct pfgStmtEntry
{
	pfgStmtKey	key;			/* must be first */
	pfgCounters counters;
	CmdType		cmdtype;
	int			query_len;
	char		query[PFG_QUERY_LEN];
} pfgStmtEntry;

/* What one execution adds to its statement's counters. */
typedef struct pfgExecStats
{
	double		ms;
	int64		rows;
	int64		shared_blks_hit;
	int64		shared_blks_read;
	int64		temp_blks_written;
	int64		duplicate_calls;
	int64		n_plus_one_calls;
} pfgExecStats;

/*
 * Executions of one statement not yet in its entry: one (pfg_store_record)
 * or a backend's pending box of them (store_pending.c).  Their time has a
 * Welford mean and M2 of its own, merged into the entry's; their latencies
 * fall in at most PFG_DELTA_BUCKETS histogram buckets, and in one window.
 */
#define PFG_DELTA_BUCKETS	4
typedef struct pfgStmtDelta
{
	int32		calls;
	int32		window;
	double		min_ms;
	double		max_ms;
	double		mean_ms;
	double		m2_ms;
	pfgExecStats sum;			/* sum.ms: the total time */
	TimestampTz last_seen;
	int32		nbuckets;
	int16		bucket[PFG_DELTA_BUCKETS];
	int32		bucket_calls[PFG_DELTA_BUCKETS];
} pfgStmtDelta;

/*
 * pfg_delta_add
 *		Add one execution to a delta; false (nothing added) when it falls in
 *		a latency bucket or window the delta has no room for.  Straight-line
 *		code, run under a spinlock.
 */
static inline bool
pfg_delta_add(pfgStmtDelta *d, const pfgExecStats *st, TimestampTz now,
			  int bucket, int32 window)
{
	int			i;

	if (d->calls > 0 && d->window != window)
		return false;
	for (i = 0; i < d->nbuckets; i++)
		if (d->bucket[i] == bucket)
			break;
	if (i == d->nbuckets)
	{
		if (i == PFG_DELTA_BUCKETS)
			return false;
		d->bucket[i] = (int16) bucket;
		d->bucket_calls[i] = 0;
		d->nbuckets++;
	}
	d->bucket_calls[i]++;
	if (d->calls == 0)
	{
		d->window = window;
		d->min_ms = d->max_ms = d->mean_ms = st->ms;
		d->m2_ms = 0;
		memset(&d->sum, 0, sizeof(d->sum));
	}
	else
	{
		double		delta = st->ms - d->mean_ms;

		d->mean_ms += delta / (d->calls + 1);
		d->m2_ms += delta * (st->ms - d->mean_ms);
		if (st->ms < d->min_ms)
			d->min_ms = st->ms;
		if (st->ms > d->max_ms)
			d->max_ms = st->ms;
	}
	d->calls++;
	d->sum.ms += st->ms;
	d->sum.rows += st->rows;
	d->sum.shared_blks_hit += st->shared_blks_hit;
	d->sum.shared_blks_read += st->shared_blks_read;
	d->sum.temp_blks_written += st->temp_blks_written;
	d->sum.duplicate_calls += st->duplicate_calls;
	d->sum.n_plus_one_calls += st->n_plus_one_calls;
	d->last_seen = now;
	return true;
}

/*
 * pfg_store_merge
 *		Add a delta of executions to a statement's counters (Welford: merge
 *		the delta's mean and M2 into the entry's).  Caller holds the entry's
 *		spinlock: straight-line code, no call, no error.
 */
static inline void
pfg_store_merge(pfgCounters *k, const pfgStmtDelta *d)
{
	double		n1 = (double) k->calls;
	double		n2 = (double) d->calls;
	double		delta = d->mean_ms - k->mean_ms;
	int			wslot = d->window % PFG_WINDOWS;
	int			i;

	if (d->calls <= 0)
		return;
	if (wslot < 0)
		wslot += PFG_WINDOWS;
	k->mean_ms += delta * n2 / (n1 + n2);
	k->sum_var_ms += d->m2_ms + delta * delta * n1 * n2 / (n1 + n2);
	if (k->calls == 0 || d->min_ms < k->min_ms)
		k->min_ms = d->min_ms;
	if (d->max_ms > k->max_ms)
		k->max_ms = d->max_ms;
	k->calls += d->calls;
	k->total_ms += d->sum.ms;
	k->rows += d->sum.rows;
	k->shared_blks_hit += d->sum.shared_blks_hit;
	k->shared_blks_read += d->sum.shared_blks_read;
	k->temp_blks_written += d->sum.temp_blks_written;
	k->duplicate_calls += d->sum.duplicate_calls;
	k->n_plus_one_calls += d->sum.n_plus_one_calls;
	if (d->last_seen > k->last_seen)
		k->last_seen = d->last_seen;
	for (i = 0; i < d->nbuckets; i++)
		k->hist[d->bucket[i]] += d->bucket_calls[i];
	if (k->win[wslot].window != d->window)
	{
		k->win[wslot].window = d->window;
		k->win[wslot].calls = 0;
		k->win[wslot].total_ms = 0;
	}
	k->win[wslot].calls += d->calls;
	k->win[wslot].total_ms += d->sum.ms;
}

/*---- the fix of an N+1 or a repeating sequence ----*/
#define PFG_FIX_SQL_LEN			384
#define PFG_FIX_PART_LEN		160

/*
 * The fix of an N+1 (or of every member of a repeating sequence), derived by
 * nplusone_fix.c from the catalog of the finding's database, in parts that
 * merge: the relations to load with the parent, named in each framework's
 * vocabulary (lists joined by ", "), and texts that do not merge (the
 * "extra" parts: a deferred field, an aggregate per row).  Plain text, no
 * parameter value.  Stored with the finding so that a report run from any
 * database shows it.
 */
typedef struct pfgFix
{
	bool		found;			/* something more precise than the generic fix */
	bool		inferred;		/* a relation was inferred from column names */
	int16		nrel;			/* relations named */
	char		table_name[NAMEDATALEN];	/* the repeated filter */
	char		column_name[NAMEDATALEN];
	char		sql[PFG_FIX_SQL_LEN];	/* the JOINs, or the SQL-side text */
	char		django_select[PFG_FIX_PART_LEN];	/* 'author' */
	char		django_prefetch[PFG_FIX_PART_LEN];	/* 'tags', 'comment_set' */
	char		django_extra[PFG_FIX_PART_LEN];
	char		rails[PFG_FIX_PART_LEN];	/* :author, :tags */
	char		rails_extra[PFG_FIX_PART_LEN];
	char		sqla[PFG_FIX_PART_LEN]; /* joinedload(Post.author), ... */
	char		sqla_extra[PFG_FIX_PART_LEN];
} pfgFix;

/* fix_state of a finding */
#define PFG_FIX_NONE			0	/* not derived yet */
#define PFG_FIX_CLAIMED			1	/* a backend is deriving it */
#define PFG_FIX_DONE			2	/* stored (possibly the generic fix) */
/* a claim older than this may be taken over (the claimer went away) */
#define PFG_FIX_CLAIM_SECS		10

/*---- findings (N+1, duplicates, write loops) ----*/
/* Bits of pfgFindingKey.ignored */
#define PFG_FINDING_IGNORED	0x01	/* suppressed in-band when it fired */
#define PFG_FINDING_TEST	0x02	/* test traffic (perfguard='test') */

typedef struct pfgFindingKey
{
	int32		kind;			/* pfgFindingKind */
	int32		ignored;		/* PFG_FINDING_IGNORED | PFG_FINDING_TEST */
	Oid			dbid;
	Oid			userid;
	uint32		route_hash;
	uint64		queryid;
	uint64		parent_queryid;
} pfgFindingKey;

typedef struct pfgFindingEntry
{
	pfgFindingKey key;			/* must be first */
	char		route[PFG_ROUTE_LEN];
	CmdType		cmdtype;
	int64		occurrences;	/* scopes in which it fired */
	int64		total_repeats;
	int64		max_repeats;
	int64		max_distinct;
	int64		total_duplicates;
	int64		max_duplicates;
	double		wasted_ms;
	TimestampTz last_seen;
	char		example_params[PFG_PARAMS_LEN];
	uint64		seq_id;			/* N+1: the repeating sequence it is part of */
	int32		nseq;			/* SEQUENCE: its members, in order */
	uint64		seq[PFG_SEQ_MAX];
	int8		framework;		/* pfgFramework of the requests */
	int8		fix_state;		/* PFG_FIX_* */
	TimestampTz fix_claimed;	/* when fix_state became CLAIMED */
	pfgFix		fix;			/* N+1 and sequences: derived once */
} pfgFindingEntry;

/* A delta to add to a finding (built in backend-local memory). */
typedef struct pfgFindingDelta
{
	bool		new_occurrence;
	int64		repeats;		/* added to total_repeats */
	int64		scope_repeats;	/* candidate for max_repeats */
	int64		scope_distinct; /* candidate for max_distinct */
	int64		duplicates;		/* added to total_duplicates */
	int64		scope_max_same; /* candidate for max_duplicates */
	double		wasted_ms;		/* added to wasted_ms */
	/*
	 * The whole scope so far: what a finding entry created after the scope's
	 * first flush (a reset or an eviction in between) starts from, instead of
	 * the delta, so that it never shows 0 occurrences or fewer total than
	 * max repeats.
	 */
	int64		scope_total;	/* repeats, or duplicate executions */
	double		scope_wasted_ms;
	CmdType		cmdtype;
	const char *example_params;
	uint64		seq_id;
	int32		nseq;
	const uint64 *seq;
	int			framework;		/* pfgFramework of the request */
} pfgFindingDelta;

/*---- per-route request statistics ----*/
typedef struct pfgRequestKey
{
	Oid			dbid;
	Oid			userid;
	uint32		route_hash;
} pfgRequestKey;

typedef struct pfgRequestEntry
{
	pfgRequestKey key;			/* must be first */
	char		route[PFG_ROUTE_LEN];
	int64		requests;
	int64		queries;
	int64		max_queries;
	double		total_ms;
	double		max_ms;
	int64		n_plus_one_requests;
	int64		duplicate_requests;
	int64		write_loop_requests;
	TimestampTz last_seen;
} pfgRequestEntry;

/* A finished request scope, as handed to the store. */
typedef struct pfgRequestDelta
{
	int64		queries;
	double		total_ms;
	bool		had_n_plus_one;
	bool		had_duplicate;
	bool		had_write_loop;
} pfgRequestDelta;

/*---- statements that failed, per SQLSTATE ----*/
#define PFG_ERRMSG_LEN			256

typedef struct pfgErrorKey
{
	Oid			userid;
	Oid			dbid;
	uint64		queryid;
	int32		sqlstate;
} pfgErrorKey;

typedef struct pfgErrorEntry
{
	pfgErrorKey key;			/* must be first */
	int64		count;
	TimestampTz first_seen;
	TimestampTz last_seen;
	char		message[PFG_ERRMSG_LEN];	/* of the last one */
} pfgErrorEntry;

/*---- suppression rules (perfguard.ignore / ignore_route) ----*/
#define PFG_IGNORE_QUERYID		1
#define PFG_IGNORE_ROUTE		2
#define PFG_IGNORE_QUERYID_ROUTE 3	/* one fingerprint on one route */
#define PFG_REASON_LEN			128

typedef struct pfgIgnoreKey
{
	int32		kind;			/* PFG_IGNORE_* */
	uint32		route_hash;
	uint64		queryid;
} pfgIgnoreKey;

typedef struct pfgIgnoreEntry
{
	pfgIgnoreKey key;			/* must be first */
	char		route[PFG_ROUTE_LEN];
	char		reason[PFG_REASON_LEN];
	TimestampTz created;
	Oid			created_by;
} pfgIgnoreEntry;

/* Shared memory: called by perfguard.c's shmem hooks. */
extern void pfg_store_shmem_request(void);
extern void pfg_store_shmem_startup(void);
extern PGDLLIMPORT bool pfg_store_attached;

/* Is perfguard's shared memory attached?  On every statement: inline. */
static inline bool
pfg_store_ready(void)
{
	return pfg_store_attached;
}

extern void pfg_store_record(const pfgStmtKey *key, CmdType cmdtype,
							 const pfgExecStats *st, const char *src,
							 int loc, int len);
extern void pfg_store_ensure_text(const pfgStmtKey *key, CmdType cmdtype,
								  const char *src, int loc, int len);
extern char *pfg_store_get_query(Oid userid, Oid dbid, uint64 queryid,
								 bool toplevel);
extern bool pfg_store_get_statement(const pfgStmtKey *key, pfgStmtEntry *out);
extern char *pfg_store_get_query_any(Oid userid, Oid dbid, uint64 queryid);
extern bool pfg_store_record_finding(const pfgFindingKey *key,
									 const char *route,
									 const pfgFindingDelta *d, void **hint);
extern void pfg_store_set_finding_fix(const pfgFindingKey *key,
									  const pfgFix *fix);
extern void pfg_store_record_request(const pfgRequestKey *key,
									 const char *route,
									 const pfgRequestDelta *d);
extern void pfg_store_record_error(const pfgErrorKey *key, const char *message);
extern bool pfg_store_add_ignore(const pfgIgnoreKey *key, const char *route,
								 const char *reason);
extern bool pfg_store_remove_ignore(const pfgIgnoreKey *key);
extern bool pfg_store_is_ignored(uint64 queryid, uint32 route_hash);

extern void pfg_store_harvest(void);
extern void pfg_store_foreach_statement(pfg_entry_cb cb, void *arg);
extern void pfg_store_foreach_finding(pfg_entry_cb cb, void *arg);
extern void pfg_store_foreach_request(pfg_entry_cb cb, void *arg);
extern void pfg_store_foreach_error(pfg_entry_cb cb, void *arg);
extern void pfg_store_foreach_ignore(pfg_entry_cb cb, void *arg);

extern void pfg_store_reset(void);
extern void pfg_store_info(TimestampTz *stats_reset, int64 *entries,
						   int64 *max_entries, int64 *dropped_entries,
						   int64 *dropped_events, int64 *findings,
						   int64 *requests);
extern TimestampTz pfg_store_stats_reset(void);
extern void pfg_store_count_dropped_event(void);

/*
 * pfg_hist_bucket
 *		Latency histogram bucket of "ms": 0 below 1 us, then four buckets per
 *		octave of microseconds.  A few integer instructions.
 */
static inline int
pfg_hist_bucket(double ms)
{
	uint64		us = (ms > 0) ? (uint64) (ms * 1000.0) : 0;
	int			e;
	int			m;
	int			b;

	if (us == 0)
		return 0;
	e = 63 - __builtin_clzll(us);
	if (e >= 2)
		m = (int) ((us >> (e - 2)) & 3);
	else
		m = (int) ((us << (2 - e)) & 3);
	b = 1 + e * 4 + m;
	return Min(b, PFG_HIST_BUCKETS - 1);
}

extern double pfg_hist_bucket_ms(int bucket);
extern uint32 pfg_route_hash(const char *route);

#endif							/* PFG_STORE_H */
