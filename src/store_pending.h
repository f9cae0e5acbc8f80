/*-------------------------------------------------------------------------
 *
 * store_pending.h
 *		Statement counters a backend has not yet added to the shared
 *		statement table (store_pending.c).
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_pending.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_STORE_PENDING_H
#define PFG_STORE_PENDING_H

#include "store.h"
#include "table.h"

/* Boxes per backend: one per statement hint slot of store.c. */
#define PFG_PENDING_SLOTS	16

extern Size pfg_pending_shmem_size(void);
extern void pfg_pending_shmem_attach(char *base, bool init, pfgTable *table);
extern bool pfg_pending_add(int slot, const pfgStmtKey *key,
							pfgStmtEntry *entry, const pfgExecStats *st,
							TimestampTz now, int bucket, int32 window);
extern void pfg_pending_start(int slot, const pfgStmtKey *key,
							  pfgStmtEntry *entry);
extern void pfg_pending_harvest(void);
extern void pfg_pending_reset(void);

#endif							/* PFG_STORE_PENDING_H */
