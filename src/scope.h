/*-------------------------------------------------------------------------
 *
 * scope.h
 *		Request scopes and the detectors that live in them (N+1 runs,
 *		duplicates, write loops, queries per request) with the guard
 *		settings.  Called from perfguard.c's hooks for every client
 *		statement, and from the SQL request API.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/scope.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_SCOPE_H
#define PFG_SCOPE_H

#include "nodes/params.h"
#include "nodes/parsenodes.h"

#include "perfguard.h"
#include "scope_findings.h"
#include "store.h"
#include "store_requests.h"

/* What the start of an execution tells its end (kept per in-flight query). */
typedef struct pfgScopeRef
{
	uint32		gen;			/* scope generation, 0 = not in a scope */
	int32		fpidx;			/* fingerprint slot in the scope */
	int32		np_add;			/* adds to n_plus_one_calls */
	int32		dup_add;		/* adds to duplicate_calls */
	bool		shared;			/* a request with an id: in the shared table */
	bool		flush_end;		/* flush its findings under the lock at the end */
	int16		box;			/* the box it ends into, or -1 (locked end) */
	uint32		box_gen;		/* the generation the box was taken for */
	pfgReqKey	key;			/* which one */
	pfgReqState *st;			/* its entry (shared memory) */
} pfgScopeRef;

extern void pfg_scope_set_fix_fn(pfg_fix_fn fn);



/* Route statistics of an open request (pfg_scope_foreach_open). */
typedef void (*pfg_open_request_cb) (const pfgRequestKey *key,
									 const char *route,
									 const pfgRequestDelta *d, void *arg);
extern void pfg_scope_foreach_open(pfg_open_request_cb cb, void *arg);
extern void pfg_scope_statement_start(const char *src, int loc, int len);
extern void pfg_scope_executor_start(pfgScopeRef *ref, uint64 queryid,
									 CmdType cmd, uint64 paramhash,
									 bool batched, const char *src, int loc,
									 int len, ParamListInfo params);
extern void pfg_scope_executor_end(pfgScopeRef *ref, uint64 queryid,
								   CmdType cmd, double ms, int64 rows,
								   bool paged, pfgExecStats *st);
extern void pfg_scope_note_rows(pfgScopeRef *ref, uint64 queryid, int64 rows);
extern void pfg_scope_abort_ref(const pfgScopeRef *ref);
extern void pfg_scope_utility(Node *parsetree);
extern void pfg_scope_statement_end(double exec_ms);
extern void pfg_scope_flush(void);
extern void pfg_scope_begin_explicit(const char *label);
extern bool pfg_scope_end_explicit(int64 *queries, double *total_ms,
								   int32 *n_plus_one, int32 *duplicates,
								   int32 *write_loops);
extern const char *pfg_scope_route(void);
extern void pfg_scope_exclude(const pfgScopeRef *ref);

#endif							/* PFG_SCOPE_H */
