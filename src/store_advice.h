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
 * The key of a btree index perfguard advises, as shared memory keeps it
 * (remembered advice, execution evidence): the table and, per key column,
 * the column, an optional one-argument function of it (an expression
 * column such as lower(email)), an optional operator class (such as
 * text_pattern_ops) and the sort direction.  Zero-filled before use.
 */
typedef struct pfgIndexKey
{
	Oid			relid;
	int16		ncols;
	AttrNumber	attnos[PFG_INDEX_MAX_COLS];
	bool		desc[PFG_INDEX_MAX_COLS];
	bool		nulls_first[PFG_INDEX_MAX_COLS];
	Oid			exprfunc[PFG_INDEX_MAX_COLS];	/* InvalidOid: the column */
	Oid			opclass[PFG_INDEX_MAX_COLS];	/* InvalidOid: the default */
} pfgIndexKey;

/* What a 'missing' advice rests on (index_advice.evidence). */
typedef enum pfgEvidenceKind
{
	PFG_EVIDENCE_GENERIC = 0,	/* the generic plan, at report time */
	PFG_EVIDENCE_EXECUTION = 1	/* a sampled execution, with its values */
} pfgEvidenceKind;

/*
 * One remembered 'missing' advice (closed loop).  The key is (dbid, index
 * key); the counters are the cumulative calls and time of each statement
 * it serves, summed over users, when the advice was last computed while
 * not applied.
 */
typedef struct pfgAdviceEntry
{
	bool		used;
	bool		applied;		/* an index with these leading columns exists */
	int16		nq;
	int16		evidence;		/* pfgEvidenceKind of the last computation */
	Oid			dbid;
	Oid			applied_index;
	pfgIndexKey key;
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
extern bool pfg_index_key_equal(const pfgIndexKey *a, const pfgIndexKey *b);
extern bool pfg_index_key_is_prefix(const pfgIndexKey *a,
									const pfgIndexKey *b);

#endif							/* PFG_STORE_ADVICE_H */
