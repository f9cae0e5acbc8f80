/*-------------------------------------------------------------------------
 *
 * table.h
 *		A fixed-size hash table in shared memory, split into partitions that
 *		each have their own LWLock, bucket chains, free list and clock hand.
 *
 * The bottom layer of perfguard: it knows nothing of statements or
 * findings, only keys (small zero-padded structs hashed as bytes) and
 * entries of a fixed size whose first bytes are the key.  The store
 * (store.c) keeps one pfgTable per kind of entry.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/table.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_TABLE_H
#define PFG_TABLE_H

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/spin.h"

/* Partitions (and LWLocks) per table. */
#define PFG_NPARTS			16

/* Iteration callback: gets a private copy of an entry. */
typedef void (*pfg_entry_cb) (const void *entry, void *arg);

/* Per-partition bookkeeping, in shared memory. */
typedef struct pfgPartition
{
	int32		nused;			/* slots in use */
	int32		hand;			/* clock hand, slot index in partition */
	int32		freelist;		/* first free slot, -1 if none */
	int32		pad;
} pfgPartition;

/* Header of every slot; the entry (key first) follows, MAXALIGNed. */
typedef struct pfgSlot
{
	int32		next;			/* bucket chain or free list, -1 = end */
	uint32		hash;
	uint8		inuse;
	uint8		usage;			/* clock usage count, a hint */
	slock_t		mutex;			/* protects the entry's counters */
} pfgSlot;

#define PFG_SLOT_HDR	MAXALIGN(sizeof(pfgSlot))

/* A table's shared header; buckets and slots follow it. */
typedef struct pfgTableShared
{
	int32		per_part;		/* slots per partition */
	int32		nbuckets;		/* buckets per partition, a power of two */
	Size		entrysize;
	Size		keysize;
	Size		slotsize;
	pfgPartition parts[PFG_NPARTS];
} pfgTableShared;

/* Backend-local handle on a table. */
typedef struct pfgTable
{
	pfgTableShared *sh;
	int32	   *buckets;		/* nbuckets per partition */
	char	   *slots;
	LWLockPadded *locks;		/* PFG_NPARTS locks */
	pg_atomic_uint64 *dropped;	/* counter bumped on eviction */
} pfgTable;

extern Size pfg_table_shmem_size(int capacity, Size entrysize);
extern void pfg_table_attach(pfgTable *t, char *base, bool init, int capacity,
							 Size keysize, Size entrysize,
							 LWLockPadded *locks, pg_atomic_uint64 *dropped);
extern void *pfg_table_insert(pfgTable *t, const void *key, uint32 hash);
extern void *pfg_table_insert_raw(pfgTable *t, const void *key, uint32 hash);
extern bool pfg_table_remove(pfgTable *t, const void *key, uint32 hash);
extern void *pfg_table_upsert(pfgTable *t, const void *key, LWLock **lock_out,
							  bool *created);
extern void *pfg_table_recheck(pfgTable *t, void *entry, const void *key,
							   LWLockMode mode, LWLock **lock_out);
extern void pfg_table_foreach(pfgTable *t, pfg_entry_cb cb, void *arg);

/* Visit callback of pfg_table_scan: true removes the entry. */
typedef bool (*pfg_visit_cb) (void *entry, void *arg);
extern int	pfg_table_scan(pfgTable *t, int part, pfg_visit_cb cb, void *arg);
extern void pfg_table_reset(pfgTable *t);
extern void pfg_table_clear(pfgTable *t);
extern int64 pfg_table_count(pfgTable *t);

static inline int
pfg_table_part(uint32 hash)
{
	return hash % PFG_NPARTS;
}

/* The LWLock of the partition that holds "hash". */
static inline LWLock *
pfg_table_lock(pfgTable *t, uint32 hash)
{
	return &t->locks[pfg_table_part(hash)].lock;
}

/* Is there a free slot in the partition of "hash"?  A hint without a lock. */
static inline bool
pfg_table_has_room(pfgTable *t, uint32 hash)
{
	return t->sh->parts[pfg_table_part(hash)].freelist >= 0;
}

/* Does the partition of "hash" hold any entry?  A hint without a lock. */
static inline bool
pfg_table_part_empty(pfgTable *t, uint32 hash)
{
	return t->sh->parts[pfg_table_part(hash)].nused == 0;
}

/* The spinlock that protects an entry's counters. */
static inline slock_t *
pfg_table_mutex(void *entry)
{
	return &((pfgSlot *) ((char *) entry - PFG_SLOT_HDR))->mutex;
}

#define PFG_USAGE_MAX		5

/*
 * Does "entry" (where an entry was found earlier) still hold "key"?  Caller
 * holds its partition lock.
 */
static inline bool
pfg_table_holds(void *entry, const void *key, Size keysize)
{
	return ((pfgSlot *) ((char *) entry - PFG_SLOT_HDR))->inuse &&
		memcmp(entry, key, keysize) == 0;
}

/* An entry was just used (a hint for the clock sweep, no lock needed). */
static inline void
pfg_table_touch(void *entry)
{
	((pfgSlot *) ((char *) entry - PFG_SLOT_HDR))->usage = PFG_USAGE_MAX;
}

static inline pfgSlot *
pfg_table_slot(pfgTable *t, int part, int idx)
{
	return (pfgSlot *) (t->slots +
						((Size) part * t->sh->per_part + idx) * t->sh->slotsize);
}

static inline void *
pfg_slot_entry(pfgSlot *s)
{
	return (char *) s + PFG_SLOT_HDR;
}

static inline int
pfg_table_bucket(pfgTable *t, uint32 hash)
{
	return (hash / PFG_NPARTS) & (t->sh->nbuckets - 1);
}

/*
 * pfg_table_lookup
 *		Find the entry with "key".  Caller holds the partition lock (either
 *		mode).  Bumps the entry's usage count (a hint, updated without a
 *		lock).  Inline: it is on the hot path of every statement.
 */
static inline void *
pfg_table_lookup(pfgTable *t, const void *key, uint32 hash)
{
	int			part = pfg_table_part(hash);
	int32		idx = t->buckets[part * t->sh->nbuckets + pfg_table_bucket(t, hash)];

	while (idx >= 0)
	{
		pfgSlot    *s = pfg_table_slot(t, part, idx);

		if (s->hash == hash && memcmp(pfg_slot_entry(s), key, t->sh->keysize) == 0)
		{
			if (s->usage < PFG_USAGE_MAX)
				s->usage++;
			return pfg_slot_entry(s);
		}
		idx = s->next;
	}
	return NULL;
}

/*
 * pfg_hash64
 *		64-bit hash of a small key (a zero-padded struct, a short string),
 *		word by word: a few instructions per 8 bytes instead of hash_bytes'
 *		general loop.
 */
static inline uint64
pfg_hash64(const void *key, Size len)
{
	const char *p = (const char *) key;
	uint64		h = UINT64CONST(0x9e3779b97f4a7c15) ^ len;

	while (len >= 8)
	{
		uint64		w;

		memcpy(&w, p, 8);
		h = (h ^ w) * UINT64CONST(0xff51afd7ed558ccd);
		h ^= h >> 32;
		p += 8;
		len -= 8;
	}
	if (len > 0)
	{
		uint64		w = 0;

		memcpy(&w, p, len);
		h = (h ^ w) * UINT64CONST(0xff51afd7ed558ccd);
		h ^= h >> 32;
	}
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	return h ^ (h >> 29);
}

/* The hash of a table key (pfg_hash64, cut to 32 bits). */
static inline uint32
pfg_table_hash(const void *key, Size len)
{
	return (uint32) pfg_hash64(key, len);
}

#endif							/* PFG_TABLE_H */
