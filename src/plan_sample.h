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

/*
 * Called after a plan sample is recorded, with the sampled execution (its
 * nodes instrumented when "analyzed"): the index advisor's evidence
 * (index_evidence.c), registered by perfguard.c, as the hot path may not
 * link against report code.
 */
typedef void (*pfgPlanEvidenceFn) (QueryDesc *queryDesc,
								   const pfgStmtKey *key, bool analyzed);

extern void pfg_plan_set_evidence_fn(pfgPlanEvidenceFn fn);
extern void pfg_plan_executor_start(QueryDesc *queryDesc, bool track);
extern void pfg_plan_executor_end(QueryDesc *queryDesc,
								  const pfgStmtKey *key, double ms,
								  int64 rows);
extern const char *pfg_plan_wait_function_in(Query *query);

#endif							/* PFG_PLAN_SAMPLE_H */
