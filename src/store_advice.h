/*-------------------------------------------------------------------------
 *
 * store_advice.h
 *		Remembered index advice (the closed loop of perfguard.index_advice):
 *		a small shared table saved across clean restarts.  Part of the store
 *		layer: store.c sizes, attaches, loads and saves it.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_advice.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_STORE_ADVICE_H
#define PFG_STORE_ADVICE_H

#include "access/attnum.h"
#include "datatype/timestamp.h"
#include "storage/lwlock.h"

#include "perfguard.h"

/* Most key columns of an advised (or candidate) index. */
#define PFG_INDEX_MAX_COLS		6
/* Advice remembered, and statements remembered per advice. */
#define PFG_ADVICE_MAX			256
#define PFG_ADVICE_QIDS			16

/*
 * One remembered 'missing' advice (closed loop).  The key is (dbid, relid,
 * columns with their directions); the counters are the cumulative calls and
 * time of each statement it serves, summed over users, when the advice was
 * last computed while not applied.
 */
typedef struct pfgAdviceEntry
{
	bool		used;
	bool		applied;		/* an index with these leading columns exists */
	int16		ncols;
	int16		nq;
	Oid			dbid;
	Oid			relid;
	Oid			applied_index;
	AttrNumber	attnos[PFG_INDEX_MAX_COLS];
	bool		desc[PFG_INDEX_MAX_COLS];
	bool		nulls_first[PFG_INDEX_MAX_COLS];
	uint64		queryids[PFG_ADVICE_QIDS];
	int64		calls[PFG_ADVICE_QIDS];
	double		total_ms[PFG_ADVICE_QIDS];
	double		est_cost_before;
	double		est_cost_after;
	double		est_improvement;
	TimestampTz advised_at;		/* when the counters were taken */
	TimestampTz applied_at;		/* when the index was first seen */
} pfgAdviceEntry;

extern Size pfg_advice_shmem_size(void);
extern void pfg_advice_shmem_attach(LWLock *lock);
extern void pfg_advice_dump(void);
extern void pfg_advice_load(void);
extern void pfg_advice_remember(const pfgAdviceEntry *ne);
extern int	pfg_advice_copy(Oid dbid, pfgAdviceEntry **out);
extern void pfg_advice_set_applied(const pfgAdviceEntry *e, bool gone,
								   Oid index);

#endif							/* PFG_STORE_ADVICE_H */
