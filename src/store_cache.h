/*-------------------------------------------------------------------------
 *
 * store_cache.h
 *		Report-time state kept in shared memory: the index advice of each
 *		database, cached so that perfguard.findings does not re-plan it on
 *		every read, and when perfguard first saw each index (DROP advice
 *		waits for statistics that covered enough time).  Part of the store
 *		layer: store.c sizes, attaches, loads and saves it.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_STORE_CACHE_H
#define PFG_STORE_CACHE_H

#include "datatype/timestamp.h"
#include "nodes/nodes.h"
#include "storage/lwlock.h"

#include "perfguard.h"

#define PFG_CACHE_DBS			8	/* databases whose advice is cached */
#define PFG_CACHE_BYTES			(128 * 1024)	/* advice (JSON) per database */
#define PFG_SEEN_MAX			8192	/* indexes whose first sighting is kept */
#define PFG_CACHE_NLOCKS		2	/* LWLocks of the tranche "perfguard_cache" */

/* The cached advice of one database, as copied out. */
typedef struct pfgCachedAdvice
{
	Oid			dbid;
	bool		fresh;			/* not invalidated, younger than the limit */
	TimestampTz computed_at;
	char	   *json;			/* palloc'd */
} pfgCachedAdvice;

extern Size pfg_cache_shmem_size(void);
extern void pfg_cache_shmem_attach(LWLockPadded *locks);
extern void pfg_cache_dump(void);
extern void pfg_cache_load(void);

extern bool pfg_cache_ddl_invalidates(Node *parsetree);
extern void pfg_cache_invalidate(void);
extern void pfg_cache_reset(void);
extern int	pfg_cache_get(int max_age_secs, pfgCachedAdvice **out);
extern uint64 pfg_cache_generation(void);
extern bool pfg_cache_put(Oid dbid, const char *json, uint64 gen);
extern TimestampTz pfg_cache_first_seen(Oid dbid, Oid indexrelid,
										TimestampTz now);
extern void pfg_cache_forget_indexes(Oid dbid, const Oid *keep, int nkeep);

#endif							/* PFG_STORE_CACHE_H */
