/*-------------------------------------------------------------------------
 *
 * store_plans.h
 *		The shared tables of plan sampling: slow fingerprints with their kept
 *		plan and sample budget, plan findings, and deep-OFFSET statements.
 *		Part of the store layer: store.c sizes and attaches them.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_plans.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_STORE_PLANS_H
#define PFG_STORE_PLANS_H

#include "datatype/timestamp.h"
#include "storage/lwlock.h"

#include "perfguard.h"

/*---- bounds ----*/
#define PFG_MAX_SLOW			256 /* slow fingerprints kept */
#define PFG_PLAN_LEN			8192	/* bytes of plan text kept, with NUL */
#define PFG_MAX_FINDINGS		1024	/* plan findings kept */
#define PFG_MAX_OFFSETS			1024	/* deep-OFFSET statements kept */
#define PFG_SAMPLE_BUDGET		3	/* instrumented runs after the first slow one */
#define PFG_REARM_SECS			300 /* re-arm a still-slow fingerprint after */
#define PFG_PLANS_NLOCKS		3	/* LWLocks of the tranche "perfguard_plans" */

#define PFG_NODE_LEN			32
#define PFG_REL_LEN				NAMEDATALEN
#define PFG_DETAIL_LEN			256
#define PFG_SUGGEST_LEN			768
#define PFG_WAIT_LEN			32

/* Plan finding codes; pfg_plan_finding_name() gives their names. */
typedef enum pfgPlanCode
{
	PFG_PLAN_SEQ_SCAN_LARGE = 1,
	PFG_PLAN_NESTED_LOOP_MANY,
	PFG_PLAN_SORT_SPILL,
	PFG_PLAN_HASH_BATCHES,
	PFG_PLAN_MISESTIMATE,
	PFG_PLAN_UNBOUNDED_RESULT,
	PFG_PLAN_NCODES
} pfgPlanCode;

/* One slow fingerprint and its kept plan. */
typedef struct pfgSlowEntry
{
	bool		inuse;
	bool		plan_analyzed;	/* the kept plan has actual rows */
	int32		budget;			/* instrumented executions still to sample */
	pfgStmtKey	key;
	int64		slow_calls;		/* executions slower than slow_query_ms */
	double		slow_total_ms;
	double		slow_max_ms;
	int64		samples;		/* instrumented executions seen */
	double		plan_ms;		/* duration of the execution whose plan is kept */
	TimestampTz first_seen;
	TimestampTz last_seen;
	TimestampTz last_armed;
	char		route[PFG_ROUTE_LEN];	/* request of the slowest execution */
	/*
	 * Where the time goes, measured on instrumented samples: their time on
	 * the CPU or reading blocks (the plan's work) against their duration.
	 * What is left is waiting (pg_sleep, locks, a slow client), which no
	 * plan change saves.
	 */
	int64		work_samples;
	double		work_ms;
	double		work_wall_ms;
	char		wait_what[PFG_WAIT_LEN];	/* a waiting function in the plan */
	int32		plan_len;
	char		plan[PFG_PLAN_LEN];
} pfgSlowEntry;

/* What a sample tells about where its time went (plan_sample.c). */
typedef struct pfgSampleTime
{
	bool		measured;		/* work_ms is known */
	double		work_ms;		/* time on the CPU or reading blocks */
	const char *wait_what;		/* a waiting function the plan calls, or NULL */
} pfgSampleTime;

/* Key of a plan finding; zero-filled before use (padding is hashed). */
typedef struct pfgPlanFindingKey
{
	pfgStmtKey	stmt;
	int32		code;			/* pfgPlanCode */
	Oid			relid;			/* relation the finding is about, or 0 */
} pfgPlanFindingKey;

typedef struct pfgPlanFinding
{
	pfgPlanFindingKey key;		/* must be first */
	char		node[PFG_NODE_LEN];
	char		relation[PFG_REL_LEN];
	char		detail[PFG_DETAIL_LEN];
	char		suggestion[PFG_SUGGEST_LEN];
	int64		occurrences;	/* executions in which it was seen */
	double		total_ms;		/* time of those executions */
	int64		value_sum;		/* finding-specific amount (rows, loops, ...) */
	int64		value_max;
	TimestampTz last_seen;
	char		route[PFG_ROUTE_LEN];	/* request of the worst case */
} pfgPlanFinding;

/* One statement paginated with a deep OFFSET. */
typedef struct pfgOffsetEntry
{
	pfgStmtKey	key;			/* must be first */
	int64		calls;			/* executions with offset >= threshold */
	double		total_ms;
	int64		max_offset;
	int64		sum_offset;		/* rows read and thrown away */
	int64		rows_returned;
	TimestampTz last_seen;
	double		max_ms;			/* the slowest execution */
	char		route[PFG_ROUTE_LEN];	/* its request */
} pfgOffsetEntry;

/* A finding found by one plan walk, before it goes to shared memory. */
typedef struct pfgFound
{
	int32		code;
	Oid			relid;
	int64		value;
	char		node[PFG_NODE_LEN];
	char		relation[PFG_REL_LEN];
	char		detail[PFG_DETAIL_LEN];
	char		suggestion[PFG_SUGGEST_LEN];
} pfgFound;

/* An armed fingerprint, as the backend-local cache of plan_sample.c sees it. */
typedef struct pfgArmed
{
	uint64		queryid;
	Oid			dbid;
	int32		idx;			/* slot in the slow table */
} pfgArmed;

extern Size pfg_plans_shmem_size(void);
extern void pfg_plans_shmem_attach(LWLockPadded *locks);
extern void pfg_plans_reset(void);
extern const char *pfg_plan_finding_name(int code);

extern PGDLLIMPORT pg_atomic_uint32 *pfg_plans_armed_gen_ptr;

/* Are the plan tables attached?  On every statement: inline. */
static inline bool
pfg_plans_ready(void)
{
	return pfg_plans_armed_gen_ptr != NULL;
}

/* Bumped whenever the set of armed fingerprints changes. */
static inline uint32
pfg_plans_armed_gen(void)
{
	return pg_atomic_read_u32(pfg_plans_armed_gen_ptr);
}
extern int	pfg_plans_armed(pfgArmed *out, int max);
extern bool pfg_plans_claim(int idx, uint64 queryid, Oid dbid);
extern bool pfg_plans_slow_find(const pfgStmtKey *key, bool *plan_analyzed,
								double *plan_ms);
extern void pfg_plans_slow_record(const pfgStmtKey *key, bool slow,
								  bool analyzed, double ms, const char *text,
								  const char *route,
								  const pfgSampleTime *time);
extern void pfg_plans_record_findings(const pfgStmtKey *key, pfgFound *found,
									  int n, double ms, const char *route);
extern bool pfg_plans_finding_exists(const pfgStmtKey *key, int code);
extern void pfg_plans_record_offset(const pfgStmtKey *key, int64 offset,
									int64 rows, double ms, const char *route);

extern int	pfg_plans_copy_slow(pfgSlowEntry **out);
extern int	pfg_plans_copy_findings(pfgPlanFinding **out);
extern int	pfg_plans_copy_offsets(pfgOffsetEntry **out);

#endif							/* PFG_STORE_PLANS_H */
