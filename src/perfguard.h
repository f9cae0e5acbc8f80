/*-------------------------------------------------------------------------
 *
 * perfguard.h
 *		Shared types, GUC variables and cross-module prototypes of perfguard.
 *
 * perfguard is split by concern:
 *	perfguard.c			_PG_init, GUCs, thin hook bodies
 *	store.c				shared memory: partitioned tables, eviction, dump/load
 *	fingerprint.c		IN-list folding, normalised text, sqlcommenter tags,
 *						parameter hashes
 *	scope.c				per-backend request scopes and their detectors
 *	detect_nplusone.c	fix suggestions derived from foreign keys
 *	views.c				set-returning functions behind the views
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/perfguard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PERFGUARD_H
#define PERFGUARD_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/execnodes.h"
#include "nodes/parsenodes.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/queryjumble.h"

#define PFG_VERSION				"1.0"

/* Length of the normalised query text kept per statement (bytes, with NUL). */
#define PFG_QUERY_LEN			2048
/* Length of a request scope's label (route). */
#define PFG_ROUTE_LEN			64
/* Longest repeating sequence of fingerprints recognised (M x N+1). */
#define PFG_SEQ_MAX				5
/* Length of an example parameter set (perfguard.capture_parameters). */
#define PFG_PARAMS_LEN			256
/* Latency histogram: 4 buckets per octave of microseconds, 1 us .. ~33 s. */
#define PFG_HIST_BUCKETS		100
/* Time windows kept per statement (perfguard.window long each). */
#define PFG_WINDOWS				60

/* Values of perfguard.track */
typedef enum pfgTrackLevel
{
	PFG_TRACK_NONE,
	PFG_TRACK_TOP,
	PFG_TRACK_ALL
} pfgTrackLevel;

/* Values of the guard settings (on_n_plus_one, on_duplicate, ...) */
typedef enum pfgGuardAction
{
	PFG_GUARD_OFF,
	PFG_GUARD_LOG,
	PFG_GUARD_WARNING,
	PFG_GUARD_ERROR
} pfgGuardAction;

/* Kinds of scope findings kept in the findings table */
typedef enum pfgFindingKind
{
	PFG_FIND_NPLUSONE = 1,
	PFG_FIND_DUPLICATE = 2,
	PFG_FIND_WRITELOOP = 3,
	PFG_FIND_SEQUENCE = 4		/* queryid = sequence id; members in seq[] */
} pfgFindingKind;

/* SQLSTATEs raised by the guard settings (class PF: perfguard) */
#define ERRCODE_PFG_N_PLUS_ONE			MAKE_SQLSTATE('P','F','0','0','1')
#define ERRCODE_PFG_DUPLICATE			MAKE_SQLSTATE('P','F','0','0','2')
#define ERRCODE_PFG_TOO_MANY_QUERIES	MAKE_SQLSTATE('P','F','0','0','3')

/*---- GUC variables (perfguard.c) ----*/
extern bool pfg_enabled;
extern int	pfg_max_statements;
extern int	pfg_track;
extern bool pfg_save;
extern int	pfg_n_plus_one_threshold;
extern int	pfg_duplicate_threshold;
extern int	pfg_write_loop_threshold;
extern int	pfg_request_gap;
extern int	pfg_slow_query_ms;
extern int	pfg_offset_threshold;
extern int	pfg_unbounded_rows;
extern int	pfg_on_n_plus_one;
extern int	pfg_on_duplicate;
extern int	pfg_max_queries_per_request;
extern int	pfg_on_too_many_queries;
extern bool pfg_capture_parameters;
extern char *pfg_cursor_secret;
extern int	pfg_window;

/*---- statement store ----*/

/* Key of a statement entry; zero-filled before use (padding is hashed). */
typedef struct pfgStmtKey
{
	Oid			userid;
	Oid			dbid;
	uint64		queryid;
	bool		toplevel;
} pfgStmtKey;

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

/*---- findings (N+1, duplicates, write loops) ----*/
typedef struct pfgFindingKey
{
	int32		kind;			/* pfgFindingKind */
	int32		ignored;		/* suppressed when it fired */
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

/* Iteration callback: gets a private copy of an entry. */
typedef void (*pfg_entry_cb) (const void *entry, void *arg);

/* store.c */
extern void pfg_store_init(void);
extern bool pfg_store_ready(void);
extern void pfg_store_check_loaded(void);
extern void pfg_store_record(const pfgStmtKey *key, CmdType cmdtype,
							 const pfgExecStats *st, const char *src,
							 int loc, int len);
extern void pfg_store_ensure_text(const pfgStmtKey *key, CmdType cmdtype,
								  const char *src, int loc, int len);
extern void pfg_store_record_finding(const pfgFindingKey *key,
									 const char *route,
									 const pfgFindingDelta *d, void **hint);
extern void pfg_store_record_request(const pfgRequestKey *key,
									 const char *route,
									 const pfgRequestDelta *d);
extern void pfg_store_foreach_statement(pfg_entry_cb cb, void *arg);
extern void pfg_store_foreach_finding(pfg_entry_cb cb, void *arg);
extern void pfg_store_foreach_request(pfg_entry_cb cb, void *arg);
extern void pfg_store_record_error(const pfgErrorKey *key, const char *message);
extern void pfg_store_foreach_error(pfg_entry_cb cb, void *arg);
extern bool pfg_store_add_ignore(const pfgIgnoreKey *key, const char *route,
								 const char *reason);
extern bool pfg_store_remove_ignore(const pfgIgnoreKey *key);
extern bool pfg_store_is_ignored(uint64 queryid, uint32 route_hash);
extern void pfg_store_foreach_ignore(pfg_entry_cb cb, void *arg);
extern void pfg_store_reset(void);
extern void pfg_store_info(TimestampTz *stats_reset, int64 *entries,
						   int64 *max_entries, int64 *dropped_entries,
						   int64 *dropped_events, int64 *findings,
						   int64 *requests);
extern void pfg_store_count_dropped_event(void);
extern void pfg_dump_finish(FILE *file, const char *tmpfile, const char *path,
							bool ok);
extern char *pfg_store_get_query(Oid userid, Oid dbid, uint64 queryid,
								 bool toplevel);

extern int	pfg_hist_bucket(double ms);
extern double pfg_hist_bucket_ms(int bucket);

/* fingerprint.c */
extern uint64 pfg_fold_inlists(Query *query, const char *src, JumbleState *jstate);
extern uint64 pfg_hash_constants(const char *src, JumbleState *jstate);
extern uint64 pfg_hash_params(ParamListInfo params);
extern char *pfg_normalize_query(const char *src, int loc, int *len);
extern bool pfg_trailing_comment(const char *src, int loc, int len,
								 const char **cstart, int *clen);
extern bool pfg_parse_tags(const char *comment, int clen,
						   char *key, int keylen, char *label, int labellen,
						   bool *ignore);
extern char *pfg_format_params(const char *src, int loc, int len,
							   ParamListInfo params);
extern void pfg_statement_text(const char *src, int *loc, int *len);

/* scope.c */

/* What the start of an execution tells its end (kept per in-flight query). */
typedef struct pfgScopeRef
{
	uint32		gen;			/* scope generation, 0 = not in a scope */
	int32		fpidx;			/* fingerprint slot in the scope */
	int32		np_add;			/* adds to n_plus_one_calls */
	int32		dup_add;		/* adds to duplicate_calls */
} pfgScopeRef;

extern void pfg_scope_init(void);
extern void pfg_scope_statement_start(const char *src, int loc, int len);
extern void pfg_scope_executor_start(pfgScopeRef *ref, uint64 queryid,
									 CmdType cmd, uint64 paramhash,
									 const char *src, int loc, int len,
									 ParamListInfo params);
extern void pfg_scope_executor_end(pfgScopeRef *ref, uint64 queryid,
								   CmdType cmd, double ms, int64 rows,
								   pfgExecStats *st);
extern void pfg_scope_utility(Node *parsetree);
extern void pfg_scope_statement_end(double exec_ms);
extern void pfg_scope_flush(void);
extern void pfg_scope_begin_explicit(const char *label);
extern bool pfg_scope_end_explicit(int64 *queries, double *total_ms,
								   int32 *n_plus_one, int32 *duplicates,
								   int32 *write_loops);
extern uint32 pfg_route_hash(const char *route);

/* detect_nplusone.c */
extern void pfg_n_plus_one_fix(const char *parent_query, const char *query,
							   char **table_name, char **column_name,
							   char **suggestion);

/* views.c */
extern void pfg_check_preloaded(void);

/* index_advice.c */
extern void pfg_index_advice_init(void);

/* plan_insights.c */
struct QueryDesc;
extern void pfg_plan_insights_init(void);
extern void pfg_plan_executor_start(struct QueryDesc *queryDesc, bool track);
extern void pfg_plan_executor_end(struct QueryDesc *queryDesc,
								  const pfgStmtKey *key, double ms,
								  int64 rows);
extern void pfg_plan_insights_reset(void);

#endif							/* PERFGUARD_H */
