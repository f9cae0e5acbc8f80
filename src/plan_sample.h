/*-------------------------------------------------------------------------
 *
 * plan_sample.h
 *		Adaptive plan sampling, called from perfguard.c's executor hooks.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/plan_sample.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_PLAN_SAMPLE_H
#define PFG_PLAN_SAMPLE_H

#include "executor/execdesc.h"
#include "nodes/parsenodes.h"

#include "perfguard.h"
#include "store_plans.h"

/*
 * Called after a plan sample is recorded, with the sampled execution (its
 * nodes instrumented when "analyzed"): the index advisor's evidence
 * (index_evidence.c), registered by perfguard.c, as the hot path may not
 * link against report code.
 */
typedef void (*pfgPlanEvidenceFn) (QueryDesc *queryDesc,
								   const pfgStmtKey *key, bool analyzed);

extern void pfg_plan_set_evidence_fn(pfgPlanEvidenceFn fn);
extern PGDLLIMPORT uint32 pfg_plan_armed_seen;
extern PGDLLIMPORT int pfg_plan_armed_count;
extern PGDLLIMPORT int pfg_plan_nsample_starts;
extern void pfg_plan_executor_start_slow(QueryDesc *queryDesc, bool track);
extern void pfg_plan_executor_end_slow(QueryDesc *queryDesc,
									   const pfgStmtKey *key, double ms,
									   int64 rows);

/*
 * pfg_plan_executor_start
 *		HOOK-START (see pfg_plan_executor_start_slow): inline, the common case
 *		of no armed fingerprint costs a few loads.
 */
static inline void
pfg_plan_executor_start(QueryDesc *queryDesc, bool track)
{
	if (!track || !pfg_plans_ready())
		return;
	if (likely(pfg_plan_armed_count == 0 &&
			   pfg_plans_armed_gen() == pfg_plan_armed_seen))
		return;
	pfg_plan_executor_start_slow(queryDesc, track);
}

/*
 * pfg_plan_executor_end
 *		HOOK-END (see pfg_plan_executor_end_slow): inline, an execution that
 *		is not sampled, not slow, not paged with an OFFSET and not unbounded
 *		costs a few comparisons.
 */
static inline void
pfg_plan_executor_end(QueryDesc *queryDesc, const pfgStmtKey *key, double ms,
					  int64 rows)
{
	PlanState  *ps = queryDesc->planstate;

	if (!pfg_plans_ready() || ps == NULL)
		return;
	if (likely(!IsA(ps, LimitState) && rows <= pfg_unbounded_rows &&
			   !(ms > pfg_slow_query_ms) && ps->instrument == NULL &&
			   pfg_plan_nsample_starts == 0))
		return;
	pfg_plan_executor_end_slow(queryDesc, key, ms, rows);
}
extern const char *pfg_plan_wait_function_in(Query *query);

#endif							/* PFG_PLAN_SAMPLE_H */
